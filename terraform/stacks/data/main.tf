# The data layer of an environment: everything that holds state or costs nothing by the
# hour. It is never destroyed by a pause: the VPC and subnets (free), the S3 gateway
# endpoint (free), the environment's KMS key, the documents bucket, the queues (a paused
# environment's backlog waits in them), the feedback database and the data-sync CI role.

data "aws_partition" "current" {}
data "aws_region" "current" {}

locals {
  name = "rag-${var.environment}"
  tags = merge(var.tags, {
    "rag/environment" = var.environment
    "rag/layer"       = "data"
  })
}

module "kms" {
  source = "../../modules/kms"
  name   = local.name
  tags   = local.tags
}

module "network" {
  source             = "../../modules/network"
  name               = local.name
  cidr_block         = var.vpc_cidr_block
  availability_zones = var.availability_zones
  kms_key_arn        = module.kms.key_arn
  log_retention_days = var.log_retention_days
  tags               = local.tags
}

# The queue policy names the bucket by ARN, and the bucket's notifications name the queue:
# the bucket's ARN is known from its name, so there is no cycle.
module "queues" {
  source                     = "../../modules/queues"
  name                       = local.name
  documents_bucket_arn       = "arn:${data.aws_partition.current.partition}:s3:::${var.documents_bucket_name}"
  visibility_timeout_seconds = var.queue_visibility_timeout_seconds
  max_receives               = var.queue_max_receives
  redrive_role_arns          = var.redrive_role_arns
  tags                       = local.tags
}

module "storage" {
  source                             = "../../modules/storage"
  bucket_name                        = var.documents_bucket_name
  kms_key_arn                        = module.kms.key_arn
  documents_queue_arn                = module.queues.documents_queue_arn
  noncurrent_version_expiration_days = var.noncurrent_version_expiration_days
  tags                               = local.tags
}

module "database" {
  source                = "../../modules/database"
  name                  = local.name
  vpc_id                = module.network.vpc_id
  subnet_ids            = module.network.private_subnet_ids
  kms_key_arn           = module.kms.key_arn
  instance_class        = var.database_instance_class
  multi_az              = var.database_multi_az
  backup_retention_days = var.database_backup_retention_days
  tags                  = local.tags
}

data "aws_iam_openid_connect_provider" "github" {
  count = var.github_repository == null ? 0 : 1
  url   = "https://token.actions.githubusercontent.com"
}

module "ci" {
  count             = var.github_repository == null ? 0 : 1
  source            = "../../modules/ci"
  name              = local.name
  repository        = var.github_repository
  oidc_provider_arn = data.aws_iam_openid_connect_provider.github[0].arn
  region            = data.aws_region.current.name
  data_sync = {
    environment = var.environment
    bucket_arn  = module.storage.bucket_arn
    kms_key_arn = module.kms.key_arn
  }
  tags = local.tags
}
