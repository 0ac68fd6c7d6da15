output "documents_queue_name" {
  description = "The services' queues.documents."
  value       = aws_sqs_queue.this["documents"].name
}

output "documents_queue_arn" {
  description = "The documents queue, once its policy lets the bucket send (so a notification configured on it validates)."
  value       = aws_sqs_queue.this["documents"].arn
  depends_on  = [aws_sqs_queue_policy.documents]
}

output "documents_dlq_arn" {
  description = "The documents queue's dead letters."
  value       = aws_sqs_queue.dlq["documents"].arn
}

output "chunks_queue_name" {
  description = "The services' queues.chunks."
  value       = aws_sqs_queue.this["chunks"].name
}

output "chunks_queue_arn" {
  description = "The chunks queue."
  value       = aws_sqs_queue.this["chunks"].arn
}

output "chunks_dlq_arn" {
  description = "The chunks queue's dead letters."
  value       = aws_sqs_queue.dlq["chunks"].arn
}
