terraform {
  # 1.11: S3 native state locking (use_lockfile) is generally available.
  required_version = "~> 1.11"

  required_providers {
    aws = {
      source  = "hashicorp/aws"
      version = "~> 5.90"
    }
  }

  backend "s3" {
    bucket       = "acme-rag-terraform-state"
    key          = "shared/terraform.tfstate"
    region       = "us-east-1"
    encrypt      = true
    use_lockfile = true # a lock object beside the state; no DynamoDB table
  }
}

provider "aws" {
  region              = var.region
  allowed_account_ids = [var.account_id]

  default_tags {
    tags = {
      "rag/environment" = "shared"
      "rag/managed-by"  = "terraform"
      "rag/repository"  = "acme/llmops-rag-pipeline"
    }
  }
}
