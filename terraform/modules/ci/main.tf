# The roles GitHub Actions assumes through GitHub's OIDC provider (no stored AWS keys), each
# trusted by one repository and one GitHub environment or branch, each able to do one job:
#
#   data-sync  .github/workflows/data-sync.yml: aws s3 sync --delete of data/documents/ to
#              the bucket's documents/ prefix (never uploads/, which users own)
#   deploy     .github/workflows/cd.yml: kubeconfig for the cluster, admin of the
#              environment's namespace only (EKS access entry)
#   ecr-push   .github/workflows/cd.yml: push the commit's image to the repository
#
# Whichever of them the caller configures (a null input: no role).

data "aws_partition" "current" {}

locals {
  partition = data.aws_partition.current.partition
  roles = merge(
    var.data_sync == null ? {} : { data-sync = "repo:${var.repository}:environment:${var.data_sync.environment}" },
    var.deploy == null ? {} : { deploy = "repo:${var.repository}:environment:${var.deploy.environment}" },
    var.ecr_push == null ? {} : { ecr-push = "repo:${var.repository}:ref:${var.ecr_push.ref}" },
  )
}

data "aws_iam_policy_document" "assume" {
  for_each = local.roles
  statement {
    actions = ["sts:AssumeRoleWithWebIdentity"]
    principals {
      type        = "Federated"
      identifiers = [var.oidc_provider_arn]
    }
    condition {
      test     = "StringEquals"
      variable = "token.actions.githubusercontent.com:aud"
      values   = ["sts.amazonaws.com"]
    }
    condition {
      test     = "StringEquals"
      variable = "token.actions.githubusercontent.com:sub"
      values   = [each.value]
    }
  }
}

resource "aws_iam_role" "this" {
  for_each             = local.roles
  name                 = "${var.name}-github-${each.key}"
  description          = "GitHub Actions (${each.value})"
  assume_role_policy   = data.aws_iam_policy_document.assume[each.key].json
  max_session_duration = 3600
  tags                 = var.tags
}

# ---------------------------------------------------------------- data-sync

data "aws_iam_policy_document" "data_sync" {
  count = var.data_sync == null ? 0 : 1

  statement {
    sid       = "ListTheSyncedPrefix"
    actions   = ["s3:ListBucket"]
    resources = [var.data_sync.bucket_arn]
    condition {
      test     = "StringLike"
      variable = "s3:prefix"
      values   = ["${var.data_sync.prefix}", "${var.data_sync.prefix}*"]
    }
  }

  statement {
    sid       = "MirrorTheSyncedPrefix"
    actions   = ["s3:PutObject", "s3:DeleteObject"]
    resources = ["${var.data_sync.bucket_arn}/${var.data_sync.prefix}*"]
  }

  statement {
    sid       = "EncryptUploads"
    actions   = ["kms:GenerateDataKey"]
    resources = [var.data_sync.kms_key_arn]
    condition {
      test     = "StringEquals"
      variable = "kms:ViaService"
      values   = ["s3.${var.region}.amazonaws.com"]
    }
  }
}

resource "aws_iam_role_policy" "data_sync" {
  count  = var.data_sync == null ? 0 : 1
  name   = "sync-documents"
  role   = aws_iam_role.this["data-sync"].id
  policy = data.aws_iam_policy_document.data_sync[0].json
}

# ---------------------------------------------------------------- deploy

data "aws_iam_policy_document" "deploy" {
  count = var.deploy == null ? 0 : 1
  statement {
    sid       = "Kubeconfig"
    actions   = ["eks:DescribeCluster"]
    resources = [var.deploy.cluster_arn]
  }
}

resource "aws_iam_role_policy" "deploy" {
  count  = var.deploy == null ? 0 : 1
  name   = "describe-cluster"
  role   = aws_iam_role.this["deploy"].id
  policy = data.aws_iam_policy_document.deploy[0].json
}

resource "aws_eks_access_entry" "deploy" {
  count         = var.deploy == null ? 0 : 1
  cluster_name  = var.deploy.cluster_name
  principal_arn = aws_iam_role.this["deploy"].arn
  tags          = var.tags
}

resource "aws_eks_access_policy_association" "deploy" {
  count         = var.deploy == null ? 0 : 1
  cluster_name  = var.deploy.cluster_name
  principal_arn = aws_iam_role.this["deploy"].arn
  policy_arn    = "arn:${local.partition}:eks::aws:cluster-access-policy/AmazonEKSAdminPolicy"

  access_scope {
    type       = "namespace"
    namespaces = [var.deploy.namespace]
  }

  depends_on = [aws_eks_access_entry.deploy]
}

# ---------------------------------------------------------------- ecr-push

data "aws_iam_policy_document" "ecr_push" {
  count = var.ecr_push == null ? 0 : 1

  statement {
    #checkov:skip=CKV_AWS_356:ecr:GetAuthorizationToken has no resource-level permissions; "*" is the only resource it accepts.
    sid       = "Login"
    actions   = ["ecr:GetAuthorizationToken"]
    resources = ["*"]
  }

  statement {
    sid = "PushAndInspect"
    actions = [
      "ecr:BatchCheckLayerAvailability",
      "ecr:BatchGetImage",
      "ecr:CompleteLayerUpload",
      "ecr:DescribeImages",
      "ecr:GetDownloadUrlForLayer",
      "ecr:InitiateLayerUpload",
      "ecr:PutImage",
      "ecr:UploadLayerPart",
    ]
    resources = var.ecr_push.repository_arns
  }
}

resource "aws_iam_role_policy" "ecr_push" {
  count  = var.ecr_push == null ? 0 : 1
  name   = "push-images"
  role   = aws_iam_role.this["ecr-push"].id
  policy = data.aws_iam_policy_document.ecr_push[0].json
}
