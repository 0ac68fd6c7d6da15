output "bucket_name" {
  description = "The documents bucket."
  value       = aws_s3_bucket.documents.bucket
}

output "bucket_arn" {
  description = "The documents bucket's ARN."
  value       = aws_s3_bucket.documents.arn
}
