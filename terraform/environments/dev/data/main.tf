# dev: cheapest that works. One NAT gateway (a zone's outage cuts egress: fine for dev),
# spot nodes, the smallest cache and database, no standbys.

module "data" {
  source = "../../../stacks/data"

  environment           = "dev"
  availability_zones    = ["us-east-1a", "us-east-1b", "us-east-1c"]
  vpc_cidr_block        = "10.10.0.0/16"
  documents_bucket_name = "acme-rag-dev-documents"

  database_instance_class        = "db.t4g.micro"
  database_multi_az              = false
  database_backup_retention_days = 3

  github_repository = "acme/llmops-rag-pipeline"
}
