# The state bucket every other root keeps its state in (with S3 native locking: the lock is
# an object beside the state, so no DynamoDB table). Applied once per account with local
# state, by an administrator; its own terraform.tfstate is then kept safe (or imported into
# the bucket it created with `terraform init -migrate-state` after adding a backend block).

terraform {
  required_version = "~> 1.11"

  required_providers {
    aws = {
      source  = "hashicorp/aws"
      version = "~> 5.90"
    }
  }
}

variable "region" {
  description = "Region of the state bucket."
  type        = string
  default     = "us-east-1"
}

variable "account_id" {
  description = "The AWS account; the provider refuses any other."
  type        = string
}

variable "state_bucket_name" {
  description = "Name of the state bucket (the backend blocks' bucket)."
  type        = string
  default     = "acme-rag-terraform-state"
}

provider "aws" {
  region              = var.region
  allowed_account_ids = [var.account_id]
}

module "kms" {
  source = "../modules/kms"
  name   = "rag-terraform-state"
}

resource "aws_s3_bucket" "state" {
  #checkov:skip=CKV_AWS_144:Cross-region replication of the state is not needed: the infrastructure it describes lives in one region, and versioning keeps every earlier state.
  #checkov:skip=CKV_AWS_18:Access to the state is audited with CloudTrail S3 data events (the account trail); server access logs would need another bucket.
  #checkov:skip=CKV2_AWS_62:Nothing reacts to state changes; event notifications would have no consumer.
  bucket = var.state_bucket_name

  lifecycle {
    prevent_destroy = true
  }
}

resource "aws_s3_bucket_ownership_controls" "state" {
  bucket = aws_s3_bucket.state.id
  rule {
    object_ownership = "BucketOwnerEnforced"
  }
}

resource "aws_s3_bucket_public_access_block" "state" {
  bucket                  = aws_s3_bucket.state.id
  block_public_acls       = true
  block_public_policy     = true
  ignore_public_acls      = true
  restrict_public_buckets = true
}

resource "aws_s3_bucket_versioning" "state" {
  bucket = aws_s3_bucket.state.id
  versioning_configuration {
    status = "Enabled"
  }
}

resource "aws_s3_bucket_server_side_encryption_configuration" "state" {
  bucket = aws_s3_bucket.state.id
  rule {
    apply_server_side_encryption_by_default {
      sse_algorithm     = "aws:kms"
      kms_master_key_id = module.kms.key_arn
    }
    bucket_key_enabled = true
  }
}

resource "aws_s3_bucket_lifecycle_configuration" "state" {
  bucket = aws_s3_bucket.state.id

  rule {
    id     = "expire-old-states"
    status = "Enabled"
    filter {}

    noncurrent_version_expiration {
      noncurrent_days           = 90
      newer_noncurrent_versions = 20
    }

    abort_incomplete_multipart_upload {
      days_after_initiation = 7
    }
  }

  depends_on = [aws_s3_bucket_versioning.state]
}

data "aws_iam_policy_document" "state" {
  statement {
    sid       = "DenyInsecureTransport"
    effect    = "Deny"
    actions   = ["s3:*"]
    resources = [aws_s3_bucket.state.arn, "${aws_s3_bucket.state.arn}/*"]
    principals {
      type        = "*"
      identifiers = ["*"]
    }
    condition {
      test     = "Bool"
      variable = "aws:SecureTransport"
      values   = ["false"]
    }
  }
}

resource "aws_s3_bucket_policy" "state" {
  bucket     = aws_s3_bucket.state.id
  policy     = data.aws_iam_policy_document.state.json
  depends_on = [aws_s3_bucket_public_access_block.state]
}

output "state_bucket_name" {
  description = "The backend blocks' bucket."
  value       = aws_s3_bucket.state.bucket
}
