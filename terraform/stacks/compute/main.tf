# The compute layer of an environment: everything billed by the hour that holds nothing
# which cannot be re-created. `terraform destroy` of this layer pauses the environment;
# `terraform apply` resumes it. It reads the data layer's outputs (var.data) and changes
# none of the data layer's resources, only adds to them: the private subnets' default
# routes and the database's ingress rule, both destroyed with this layer.

data "aws_iam_openid_connect_provider" "github" {
  count = var.github_repository == null ? 0 : 1
  url   = "https://token.actions.githubusercontent.com"
}

locals {
  name = "rag-${var.data.environment}"
  tags = merge(var.tags, {
    "rag/environment" = var.data.environment
    "rag/layer"       = "compute"
  })
}

module "egress" {
  source                      = "../../modules/egress"
  name                        = local.name
  vpc_id                      = var.data.vpc_id
  vpc_cidr_block              = var.data.vpc_cidr_block
  public_subnet_ids           = var.data.public_subnet_ids
  private_route_table_ids     = var.data.private_route_table_ids
  endpoint_subnet_ids         = var.data.private_subnet_ids
  nat_gateway_count           = var.nat_gateway_count
  interface_endpoint_services = var.interface_endpoint_services
  tags                        = local.tags
}

module "eks" {
  source                 = "../../modules/eks"
  name                   = local.name
  kubernetes_version     = var.kubernetes_version
  subnet_ids             = var.data.private_subnet_ids
  kms_key_arn            = var.data.kms_key_arn
  endpoint_public_access = var.endpoint_public_access
  public_access_cidrs    = var.public_access_cidrs
  admin_role_arns        = var.admin_role_arns
  node_groups            = var.node_groups
  tags                   = local.tags

  # Nodes need their egress (image pulls, the EKS API) when they boot.
  depends_on = [module.egress]
}

module "cache" {
  source                   = "../../modules/cache"
  name                     = local.name
  vpc_id                   = var.data.vpc_id
  subnet_ids               = var.data.private_subnet_ids
  client_security_group_id = module.eks.node_security_group_id
  kms_key_arn              = var.data.kms_key_arn
  node_type                = var.cache_node_type
  replicas                 = var.cache_replicas
  tags                     = local.tags
}

# The feedback database (data layer) admits the nodes of this cluster, while it exists.
resource "aws_vpc_security_group_ingress_rule" "database_from_nodes" {
  security_group_id            = var.data.database_security_group_id
  description                  = "PostgreSQL (TLS) from the EKS nodes and pods"
  referenced_security_group_id = module.eks.node_security_group_id
  from_port                    = 5432
  to_port                      = 5432
  ip_protocol                  = "tcp"
  tags                         = local.tags
}

module "iam" {
  source              = "../../modules/iam"
  name                = local.name
  oidc_provider_arn   = module.eks.oidc_provider_arn
  oidc_provider_host  = module.eks.oidc_provider_host
  namespace           = var.namespace
  bucket_arn          = var.data.documents_bucket_arn
  kms_key_arn         = var.data.kms_key_arn
  documents_queue_arn = var.data.documents_queue_arn
  documents_dlq_arn   = var.data.documents_dlq_arn
  chunks_queue_arn    = var.data.chunks_queue_arn
  chunks_dlq_arn      = var.data.chunks_dlq_arn
  secret_arns         = [module.cache.secret_arn, var.data.database_secret_arn]
  tags                = local.tags
}

module "ci" {
  count             = var.github_repository == null ? 0 : 1
  source            = "../../modules/ci"
  name              = local.name
  repository        = var.github_repository
  oidc_provider_arn = data.aws_iam_openid_connect_provider.github[0].arn
  deploy = {
    environment  = var.data.environment
    cluster_name = module.eks.cluster_name
    cluster_arn  = module.eks.cluster_arn
    namespace    = var.namespace
  }
  tags = local.tags
}
