output "role_arns" {
  description = "Role ARN by job (data-sync, deploy, ecr-push): the AWS_*_ROLE_ARN variables of the workflows."
  value       = { for job, role in aws_iam_role.this : job => role.arn }
}
