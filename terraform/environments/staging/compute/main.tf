# staging: prod's shape on on-demand nodes (releases are tested on what prod runs), but one
# NAT gateway and no standbys: staging rehearses releases, not zone failures.

# The data layer's outputs, from its state (written by ../data).
data "terraform_remote_state" "data" {
  backend = "s3"
  config = {
    bucket = "acme-rag-terraform-state"
    key    = "staging/data.tfstate"
    region = "us-east-1"
  }
}

module "compute" {
  source = "../../../stacks/compute"

  data      = data.terraform_remote_state.data.outputs.data
  namespace = "rag-staging"

  nat_gateway_count = 1
  node_groups = {
    general = {
      capacity_type  = "ON_DEMAND"
      instance_types = ["m6i.large"]
      min_size       = 2
      max_size       = 6
      desired_size   = 2
    }
  }

  # The CD runners reach the API server through its public endpoint, from these
  # addresses only (203.0.113.0/24 is a documentation placeholder: set the runners' range).
  endpoint_public_access = true
  public_access_cidrs    = var.api_allowed_cidrs
  admin_role_arns        = var.admin_role_arns

  cache_node_type = "cache.t4g.small"
  cache_replicas  = 0

  github_repository = "acme/llmops-rag-pipeline"
}
