output "role_arns" {
  description = "IRSA role per service (and operator): the eks.amazonaws.com/role-arn annotation of its ServiceAccount."
  value       = { for service, role in aws_iam_role.this : service => role.arn }
}
