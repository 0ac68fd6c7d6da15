# staging: prod's shape on on-demand nodes (releases are tested on what prod runs), but one
# NAT gateway and no standbys: staging rehearses releases, not zone failures.

module "data" {
  source = "../../../stacks/data"

  environment           = "staging"
  availability_zones    = ["us-east-1a", "us-east-1b", "us-east-1c"]
  vpc_cidr_block        = "10.20.0.0/16"
  documents_bucket_name = "acme-rag-staging-documents"

  database_instance_class        = "db.t4g.small"
  database_multi_az              = false
  database_backup_retention_days = 7

  github_repository = "acme/llmops-rag-pipeline"
}
