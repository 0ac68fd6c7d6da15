# The semantic and exact answer cache: an ElastiCache (Valkey, Redis-compatible) replication
# group in the private subnets, TLS in transit, encrypted at rest with the environment's key,
# an AUTH token kept in Secrets Manager, reachable on 6379 from the EKS nodes only. It holds
# nothing that cannot be recomputed, so it belongs to the compute layer and goes with it.

resource "aws_security_group" "cache" {
  name        = "${var.name}-cache"
  description = "ElastiCache: 6379 from the EKS nodes only"
  vpc_id      = var.vpc_id
  tags        = merge(var.tags, { Name = "${var.name}-cache" })
}

resource "aws_vpc_security_group_ingress_rule" "from_nodes" {
  security_group_id            = aws_security_group.cache.id
  description                  = "Redis protocol (TLS) from the EKS nodes and pods"
  referenced_security_group_id = var.client_security_group_id
  from_port                    = 6379
  to_port                      = 6379
  ip_protocol                  = "tcp"
}

resource "aws_elasticache_subnet_group" "cache" {
  name       = "${var.name}-cache"
  subnet_ids = var.subnet_ids
  tags       = var.tags
}

resource "random_password" "auth" {
  length  = 64
  special = false # ElastiCache AUTH tokens allow only some symbols; 64 alphanumerics are plenty
}

resource "aws_secretsmanager_secret" "auth" {
  #checkov:skip=CKV2_AWS_57:The token is rotated by changing it here (auth_token_update_strategy ROTATE keeps both valid meanwhile); a Lambda rotation would have to coordinate ElastiCache and every client.
  name                    = "${var.name}/cache"
  description             = "AUTH token and URL of the ${var.name} cache"
  kms_key_id              = var.kms_key_arn
  recovery_window_in_days = 0 # recreated on every resume with the cache
  tags                    = var.tags
}

resource "aws_elasticache_replication_group" "cache" {
  #checkov:skip=CKV2_AWS_50:Multi-AZ with automatic failover follows var.replicas: on in prod (1 replica), off in dev and staging, where losing the cache only costs recomputed answers.
  replication_group_id       = "${var.name}-cache"
  description                = "${var.name} answer cache"
  engine                     = var.engine
  engine_version             = var.engine_version
  node_type                  = var.node_type
  num_cache_clusters         = var.replicas + 1
  automatic_failover_enabled = var.replicas > 0
  multi_az_enabled           = var.replicas > 0
  port                       = 6379
  subnet_group_name          = aws_elasticache_subnet_group.cache.name
  security_group_ids         = [aws_security_group.cache.id]
  parameter_group_name       = var.parameter_group_name

  at_rest_encryption_enabled = true
  kms_key_id                 = var.kms_key_arn
  transit_encryption_enabled = true
  transit_encryption_mode    = "required"
  auth_token                 = random_password.auth.result
  auth_token_update_strategy = "ROTATE"

  # A cache of recomputable answers: no snapshots to pay for; destroyed on pause anyway.
  snapshot_retention_limit   = 0
  auto_minor_version_upgrade = true
  maintenance_window         = var.maintenance_window
  apply_immediately          = false

  tags = var.tags
}

resource "aws_secretsmanager_secret_version" "auth" {
  secret_id = aws_secretsmanager_secret.auth.id
  secret_string = jsonencode({
    auth_token = random_password.auth.result
    # cache.backend.url of the services (TLS: rediss://).
    url = "rediss://:${random_password.auth.result}@${aws_elasticache_replication_group.cache.primary_endpoint_address}:6379"
  })
}
