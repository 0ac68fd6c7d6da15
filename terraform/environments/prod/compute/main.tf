# prod: a NAT gateway per zone, on-demand nodes over three zones, a cache replica and a
# database standby in another zone.

# The data layer's outputs, from its state (written by ../data).
data "terraform_remote_state" "data" {
  backend = "s3"
  config = {
    bucket = "acme-rag-terraform-state"
    key    = "prod/data.tfstate"
    region = "us-east-1"
  }
}

module "compute" {
  source = "../../../stacks/compute"

  data      = data.terraform_remote_state.data.outputs.data
  namespace = "rag-prod"

  nat_gateway_count = 3
  node_groups = {
    general = {
      capacity_type  = "ON_DEMAND"
      instance_types = ["m6i.xlarge"]
      min_size       = 3
      max_size       = 12
      desired_size   = 3
    }
  }

  # The CD runners reach the API server through its public endpoint, from these
  # addresses only (203.0.113.0/24 is a documentation placeholder: set the runners' range).
  endpoint_public_access = true
  public_access_cidrs    = var.api_allowed_cidrs
  admin_role_arns        = var.admin_role_arns

  cache_node_type = "cache.t4g.medium"
  cache_replicas  = 1

  github_repository = "acme/llmops-rag-pipeline"
}
