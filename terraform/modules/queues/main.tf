# The documents queue (S3 events -> ingest-worker) and the chunks queue (ingest-worker ->
# embedder), each with a dead-letter queue after max_receives receives. Encrypted with SQS
# managed keys (SSE-SQS): S3 can publish to them without a key-policy grant, and the
# services' roles need no KMS permissions for queues. Names follow the services' config:
# [queues] documents / chunks, and the dead-letter queue is "<name>-dlq".

data "aws_caller_identity" "current" {}

locals {
  queues = {
    documents = "${var.name}-documents"
    chunks    = "${var.name}-chunks"
  }
}

resource "aws_sqs_queue" "dlq" {
  for_each                  = local.queues
  name                      = "${each.value}-dlq"
  message_retention_seconds = 1209600 # 14 days, the most SQS keeps: time to look and redrive
  sqs_managed_sse_enabled   = true
  tags                      = var.tags
}

resource "aws_sqs_queue" "this" {
  for_each                   = local.queues
  name                       = each.value
  visibility_timeout_seconds = var.visibility_timeout_seconds
  message_retention_seconds  = var.message_retention_seconds
  receive_wait_time_seconds  = 20 # long polling
  sqs_managed_sse_enabled    = true
  redrive_policy = jsonencode({
    deadLetterTargetArn = aws_sqs_queue.dlq[each.key].arn
    maxReceiveCount     = var.max_receives
  })
  tags = var.tags
}

# Each dead-letter queue takes dead letters from its own queue only.
resource "aws_sqs_queue_redrive_allow_policy" "dlq" {
  for_each  = local.queues
  queue_url = aws_sqs_queue.dlq[each.key].id
  redrive_allow_policy = jsonencode({
    redrivePermission = "byQueue"
    sourceQueueArns   = [aws_sqs_queue.this[each.key].arn]
  })
}

# Only the documents bucket may send to the documents queue: S3 is allowed for that bucket in
# this account, and every other sender is denied, whatever its IAM policies say.
data "aws_iam_policy_document" "documents" {
  statement {
    sid       = "DocumentsBucketSends"
    actions   = ["sqs:SendMessage"]
    resources = [aws_sqs_queue.this["documents"].arn]
    principals {
      type        = "Service"
      identifiers = ["s3.amazonaws.com"]
    }
    condition {
      test     = "ArnEquals"
      variable = "aws:SourceArn"
      values   = [var.documents_bucket_arn]
    }
    condition {
      test     = "StringEquals"
      variable = "aws:SourceAccount"
      values   = [data.aws_caller_identity.current.account_id]
    }
  }

  statement {
    sid       = "NobodyElseSends"
    effect    = "Deny"
    actions   = ["sqs:SendMessage"]
    resources = [aws_sqs_queue.this["documents"].arn]
    principals {
      type        = "*"
      identifiers = ["*"]
    }
    # Absent for IAM principals, so this denies every sender but the bucket's notifications.
    condition {
      test     = "ArnNotEquals"
      variable = "aws:SourceArn"
      values   = [var.documents_bucket_arn]
    }
    # ...and the operators' roles that redrive the dead-letter queue back into this one
    # (StartMessageMoveTask sends as its caller).
    dynamic "condition" {
      for_each = length(var.redrive_role_arns) > 0 ? [1] : []
      content {
        test     = "ArnNotEquals"
        variable = "aws:PrincipalArn"
        values   = var.redrive_role_arns
      }
    }
  }

  statement {
    sid       = "DenyInsecureTransport"
    effect    = "Deny"
    actions   = ["sqs:*"]
    resources = [aws_sqs_queue.this["documents"].arn]
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

resource "aws_sqs_queue_policy" "documents" {
  queue_url = aws_sqs_queue.this["documents"].id
  policy    = data.aws_iam_policy_document.documents.json
}

# The other three queues: TLS only.
data "aws_iam_policy_document" "tls_only" {
  for_each = {
    chunks        = aws_sqs_queue.this["chunks"].arn
    documents-dlq = aws_sqs_queue.dlq["documents"].arn
    chunks-dlq    = aws_sqs_queue.dlq["chunks"].arn
  }
  statement {
    sid       = "DenyInsecureTransport"
    effect    = "Deny"
    actions   = ["sqs:*"]
    resources = [each.value]
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

resource "aws_sqs_queue_policy" "tls_only" {
  for_each = {
    chunks        = aws_sqs_queue.this["chunks"].id
    documents-dlq = aws_sqs_queue.dlq["documents"].id
    chunks-dlq    = aws_sqs_queue.dlq["chunks"].id
  }
  queue_url = each.value
  policy    = data.aws_iam_policy_document.tls_only[each.key].json
}
