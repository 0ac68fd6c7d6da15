variable "name" {
  description = "Prefix of the queue names, e.g. rag-dev (queues rag-dev-documents, rag-dev-chunks)."
  type        = string
}

variable "documents_bucket_arn" {
  description = "The only sender allowed on the documents queue (its S3 event notifications)."
  type        = string
}

variable "visibility_timeout_seconds" {
  description = "How long a received message stays hidden; the services' queues.visibility_timeout_secs."
  type        = number
  default     = 60
}

variable "max_receives" {
  description = "Receives before a message goes to the dead-letter queue; the services' queues.max_receives."
  type        = number
  default     = 5
}

variable "message_retention_seconds" {
  description = "How long an unconsumed message is kept (4 days: a paused environment's backlog survives a long weekend)."
  type        = number
  default     = 345600
}

variable "tags" {
  description = "Tags on every resource."
  type        = map(string)
  default     = {}
}

variable "redrive_role_arns" {
  description = "Roles (operators) that may move the documents dead letters back into the documents queue; nobody else but the bucket may send to it."
  type        = list(string)
  default     = []
}
