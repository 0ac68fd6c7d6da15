# dev: cheapest that works. One NAT gateway (a zone's outage cuts egress: fine for dev),
# spot nodes, the smallest cache and database, no standbys.

# The data layer's outputs, from its state (written by ../data).
data "terraform_remote_state" "data" {
  backend = "s3"
  config = {
    bucket = "acme-rag-terraform-state"
    key    = "dev/data.tfstate"
    region = "us-east-1"
  }
}

module "compute" {
  source = "../../../stacks/compute"

  data      = data.terraform_remote_state.data.outputs.data
  namespace = "rag-dev"

  nat_gateway_count = 1
  node_groups = {
    # Spot: dev tolerates a node taken back with two minutes' notice; several instance
    # types of the same size make an interruption in every pool at once unlikely.
    general = {
      capacity_type  = "SPOT"
      instance_types = ["m6i.large", "m6a.large", "m5.large", "m5a.large", "m7i.large"]
      min_size       = 1
      max_size       = 4
      desired_size   = 2
    }
  }

  # The CD runners reach the API server through its public endpoint, from these
  # addresses only (203.0.113.0/24 is a documentation placeholder: set the runners' range).
  endpoint_public_access = true
  public_access_cidrs    = var.api_allowed_cidrs
  admin_role_arns        = var.admin_role_arns

  cache_node_type = "cache.t4g.micro"
  cache_replicas  = 0

  github_repository = "acme/llmops-rag-pipeline"
}
