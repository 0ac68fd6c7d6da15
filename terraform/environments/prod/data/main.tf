# prod: a NAT gateway per zone, on-demand nodes over three zones, a cache replica and a
# database standby in another zone.

module "data" {
  source = "../../../stacks/data"

  environment           = "prod"
  availability_zones    = ["us-east-1a", "us-east-1b", "us-east-1c"]
  vpc_cidr_block        = "10.30.0.0/16"
  documents_bucket_name = "acme-rag-prod-documents"

  database_instance_class        = "db.t4g.medium"
  database_multi_az              = true
  database_backup_retention_days = 14

  github_repository = "acme/llmops-rag-pipeline"
}
