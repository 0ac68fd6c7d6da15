output "environment" {
  description = "The environment."
  value       = var.environment
}

output "kms_key_arn" {
  description = "The environment's key."
  value       = module.kms.key_arn
}

output "vpc_id" {
  description = "The VPC."
  value       = module.network.vpc_id
}

output "vpc_cidr_block" {
  description = "The VPC's range."
  value       = module.network.vpc_cidr_block
}

output "public_subnet_ids" {
  description = "Public subnets in zone order."
  value       = module.network.public_subnet_ids
}

output "private_subnet_ids" {
  description = "Private subnets in zone order."
  value       = module.network.private_subnet_ids
}

output "private_route_table_ids" {
  description = "Private route tables in zone order."
  value       = module.network.private_route_table_ids
}

output "documents_bucket_name" {
  description = "object_store.bucket of the services."
  value       = module.storage.bucket_name
}

output "documents_bucket_arn" {
  description = "The documents bucket."
  value       = module.storage.bucket_arn
}

output "documents_queue_name" {
  description = "queues.documents of the services."
  value       = module.queues.documents_queue_name
}

output "documents_queue_arn" {
  description = "The documents queue."
  value       = module.queues.documents_queue_arn
}

output "documents_dlq_arn" {
  description = "Its dead-letter queue."
  value       = module.queues.documents_dlq_arn
}

output "chunks_queue_name" {
  description = "queues.chunks of the services."
  value       = module.queues.chunks_queue_name
}

output "chunks_queue_arn" {
  description = "The chunks queue."
  value       = module.queues.chunks_queue_arn
}

output "chunks_dlq_arn" {
  description = "Its dead-letter queue."
  value       = module.queues.chunks_dlq_arn
}

output "database_endpoint" {
  description = "host:port of the feedback database."
  value       = module.database.endpoint
}

output "database_secret_arn" {
  description = "The database master password's secret (RDS-managed)."
  value       = module.database.master_user_secret_arn
}

output "database_security_group_id" {
  description = "The database's security group."
  value       = module.database.security_group_id
}

output "ci_role_arns" {
  description = "AWS_DATA_SYNC_ROLE_ARN of the GitHub environment."
  value       = try(module.ci[0].role_arns, {})
}
