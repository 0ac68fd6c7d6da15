# One customer-managed key per environment. It encrypts the documents bucket, the database
# and its Performance Insights, the EKS secrets, the cache, the ECR repositories and every
# CloudWatch log group of the environment. It lives in the data layer, so a paused and
# resumed cluster keeps reading what the previous cluster wrote.

data "aws_caller_identity" "current" {}
data "aws_partition" "current" {}
data "aws_region" "current" {}

locals {
  account_root = "arn:${data.aws_partition.current.partition}:iam::${data.aws_caller_identity.current.account_id}:root"
}

data "aws_iam_policy_document" "key" {
  #checkov:skip=CKV_AWS_111:A key policy: its Resource "*" is this key alone, and the account-root statement is how AWS delegates the key's administration to IAM policies.
  #checkov:skip=CKV_AWS_356:A key policy: its Resource "*" means this key, there is no other resource to name.
  #checkov:skip=CKV_AWS_109:A key policy: kms:* for the account root delegates to IAM (the AWS default key policy); without it the key becomes unmanageable.
  # The account administers the key through IAM; without this statement nobody could.
  statement {
    sid       = "AccountAdministersThroughIam"
    actions   = ["kms:*"]
    resources = ["*"] # in a key policy, "*" is this key
    principals {
      type        = "AWS"
      identifiers = [local.account_root]
    }
  }

  # CloudWatch Logs encrypts the environment's log groups (VPC flow logs, EKS control plane).
  statement {
    sid = "CloudWatchLogsForThisAccount"
    actions = [
      "kms:Encrypt",
      "kms:Decrypt",
      "kms:ReEncrypt*",
      "kms:GenerateDataKey*",
      "kms:Describe*",
    ]
    resources = ["*"] # in a key policy, "*" is this key
    principals {
      type        = "Service"
      identifiers = ["logs.${data.aws_region.current.name}.amazonaws.com"]
    }
    condition {
      test     = "ArnLike"
      variable = "kms:EncryptionContext:aws:logs:arn"
      values   = ["arn:${data.aws_partition.current.partition}:logs:${data.aws_region.current.name}:${data.aws_caller_identity.current.account_id}:log-group:*"]
    }
  }
}

resource "aws_kms_key" "this" {
  description             = "${var.name}: data, secrets and logs"
  enable_key_rotation     = true
  rotation_period_in_days = 365
  deletion_window_in_days = var.deletion_window_in_days
  policy                  = data.aws_iam_policy_document.key.json
  tags                    = var.tags
}

resource "aws_kms_alias" "this" {
  name          = "alias/${var.name}"
  target_key_id = aws_kms_key.this.key_id
}
