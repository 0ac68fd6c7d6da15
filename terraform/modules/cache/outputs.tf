output "primary_endpoint" {
  description = "Host of the primary."
  value       = aws_elasticache_replication_group.cache.primary_endpoint_address
}

output "secret_arn" {
  description = "Secret with the AUTH token and the rediss:// URL (read by External Secrets)."
  value       = aws_secretsmanager_secret.auth.arn
}

output "security_group_id" {
  description = "The cache's security group."
  value       = aws_security_group.cache.id
}
