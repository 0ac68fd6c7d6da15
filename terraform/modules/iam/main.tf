# One IRSA role per service, trusted only by that service's ServiceAccount in the
# environment's namespace, each with only what its code calls (crates/object-store/src/s3.rs,
# crates/queue/src/sqs.rs, crates/embeddings and crates/generation on Bedrock):
#
#   gateway        puts uploads into the bucket (HeadBucket for readiness)
#   router         Converse / ConverseStream on the generation models (Nova Lite, Pro)
#   retriever      nothing: it embeds queries through the embedder's gRPC service
#   embedder       consumes the chunks queue (dead letters to its DLQ), Titan embeddings
#   ingest-worker  reads and deletes objects (the document service deletes on
#                  DELETE /v1/documents), consumes the documents queue, sends to chunks
#
# plus, optionally, the KEDA operator (queue depth for the embedder's and ingest-worker's
# autoscaling) and the External Secrets operator (the cache's and database's credentials).

data "aws_partition" "current" {}
data "aws_region" "current" {}

locals {
  partition = data.aws_partition.current.partition
  region    = data.aws_region.current.name
  s3_via    = "s3.${local.region}.amazonaws.com"
  model_arn = { for id in toset(concat([var.embedding_model_id], var.generation_model_ids)) :
    id => "arn:${local.partition}:bedrock:${local.region}::foundation-model/${id}"
  }

  service_accounts = merge(
    { for service in keys(local.policies) : service => {
      namespace       = var.namespace
      service_account = lookup(var.service_account_names, service, service)
    } },
    { for role, sa in {
      keda-operator    = { namespace = var.keda_namespace, service_account = "keda-operator" }
      external-secrets = { namespace = var.external_secrets_namespace, service_account = "external-secrets" }
    } : role => sa if contains(keys(local.operator_policies), role) },
  )

  # Statements per role: sid => { actions, resources, conditions }.
  policies = {
    gateway = {
      PutUploads = {
        actions   = ["s3:PutObject"]
        resources = ["${var.bucket_arn}/*"]
      }
      # HeadBucket (the readiness check, S3ObjectStore::health) is authorised as ListBucket.
      HeadBucket = {
        actions   = ["s3:ListBucket"]
        resources = [var.bucket_arn]
      }
      EncryptUploads = {
        actions   = ["kms:GenerateDataKey"]
        resources = [var.kms_key_arn]
        via       = local.s3_via
      }
    }
    router = {
      Generate = {
        actions   = ["bedrock:InvokeModel", "bedrock:InvokeModelWithResponseStream"]
        resources = [for id in var.generation_model_ids : local.model_arn[id]]
      }
    }
    retriever = {}
    embedder = {
      ConsumeChunks = {
        actions = [
          "sqs:ReceiveMessage",
          "sqs:DeleteMessage",
          "sqs:ChangeMessageVisibility",
          "sqs:GetQueueAttributes",
          "sqs:GetQueueUrl",
        ]
        resources = [var.chunks_queue_arn]
      }
      DeadLetterChunks = {
        actions   = ["sqs:SendMessage", "sqs:GetQueueAttributes", "sqs:GetQueueUrl"]
        resources = [var.chunks_dlq_arn]
      }
      Embed = {
        actions   = ["bedrock:InvokeModel"]
        resources = [local.model_arn[var.embedding_model_id]]
      }
    }
    ingest-worker = {
      ReadAndDeleteDocuments = {
        # DeleteObject only adds a delete marker in the versioned bucket; no
        # DeleteObjectVersion, so the worker cannot destroy a version.
        actions   = ["s3:GetObject", "s3:DeleteObject"]
        resources = ["${var.bucket_arn}/*"]
      }
      # Also makes a GET of a vanished key a 404 rather than a 403.
      ListDocuments = {
        actions   = ["s3:ListBucket"]
        resources = [var.bucket_arn]
      }
      DecryptDocuments = {
        actions   = ["kms:Decrypt"]
        resources = [var.kms_key_arn]
        via       = local.s3_via
      }
      ConsumeDocuments = {
        actions = [
          "sqs:ReceiveMessage",
          "sqs:DeleteMessage",
          "sqs:ChangeMessageVisibility",
          "sqs:GetQueueAttributes",
          "sqs:GetQueueUrl",
        ]
        resources = [var.documents_queue_arn]
      }
      DeadLetterDocuments = {
        actions   = ["sqs:SendMessage", "sqs:GetQueueAttributes", "sqs:GetQueueUrl"]
        resources = [var.documents_dlq_arn]
      }
      SendChunks = {
        actions   = ["sqs:SendMessage", "sqs:GetQueueAttributes", "sqs:GetQueueUrl"]
        resources = [var.chunks_queue_arn]
      }
      # Opening the chunks queue resolves its dead-letter queue's URL from the redrive policy.
      ResolveChunksDeadLetters = {
        actions   = ["sqs:GetQueueUrl"]
        resources = [var.chunks_dlq_arn]
      }
    }
  }

  # (A conditional between an object and {} does not type-check; a filtered for does.)
  operator_policies = { for role, statements in {
    keda-operator = {
      QueueDepth = {
        actions   = ["sqs:GetQueueAttributes"]
        resources = [var.documents_queue_arn, var.chunks_queue_arn]
      }
    }
    external-secrets = {
      ReadSecrets = {
        actions   = ["secretsmanager:GetSecretValue", "secretsmanager:DescribeSecret"]
        resources = var.secret_arns
      }
      DecryptSecrets = {
        actions   = ["kms:Decrypt"]
        resources = [var.kms_key_arn]
        via       = "secretsmanager.${local.region}.amazonaws.com"
      }
    }
    } : role => statements if(role == "keda-operator" ? var.keda_enabled : length(var.secret_arns) > 0)
  }

  all_policies = { for role, statements in merge(local.policies, local.operator_policies) :
    role => statements if length(statements) > 0
  }
}

data "aws_iam_policy_document" "assume" {
  for_each = local.service_accounts

  statement {
    actions = ["sts:AssumeRoleWithWebIdentity"]
    principals {
      type        = "Federated"
      identifiers = [var.oidc_provider_arn]
    }
    condition {
      test     = "StringEquals"
      variable = "${var.oidc_provider_host}:sub"
      values   = ["system:serviceaccount:${each.value.namespace}:${each.value.service_account}"]
    }
    condition {
      test     = "StringEquals"
      variable = "${var.oidc_provider_host}:aud"
      values   = ["sts.amazonaws.com"]
    }
  }
}

resource "aws_iam_role" "this" {
  for_each             = local.service_accounts
  name                 = "${var.name}-${each.key}"
  description          = "IRSA: ${each.value.namespace}/${each.value.service_account}"
  assume_role_policy   = data.aws_iam_policy_document.assume[each.key].json
  max_session_duration = 3600
  tags                 = merge(var.tags, { "rag/service" = each.key })
}

data "aws_iam_policy_document" "this" {
  for_each = local.all_policies

  dynamic "statement" {
    for_each = each.value
    content {
      sid       = statement.key
      actions   = statement.value.actions
      resources = statement.value.resources

      # KMS only when S3 (or Secrets Manager) calls it on the role's behalf.
      dynamic "condition" {
        for_each = lookup(statement.value, "via", null) == null ? [] : [statement.value.via]
        content {
          test     = "StringEquals"
          variable = "kms:ViaService"
          values   = [condition.value]
        }
      }
    }
  }
}

resource "aws_iam_role_policy" "this" {
  for_each = local.all_policies
  name     = "least-privilege"
  role     = aws_iam_role.this[each.key].id
  policy   = data.aws_iam_policy_document.this[each.key].json
}
