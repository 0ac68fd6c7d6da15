output "endpoint" {
  description = "host:port of the database."
  value       = aws_db_instance.db.endpoint
}

output "master_user_secret_arn" {
  description = "Secret (managed by RDS) with the master user's password."
  value       = aws_db_instance.db.master_user_secret[0].secret_arn
}

output "security_group_id" {
  description = "The database's security group; the compute layer lets the EKS nodes in."
  value       = aws_security_group.db.id
}
