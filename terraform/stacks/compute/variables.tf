variable "data" {
  description = "The data layer's outputs (terraform_remote_state of the environment's data root)."
  type = object({
    environment                = string
    kms_key_arn                = string
    vpc_id                     = string
    vpc_cidr_block             = string
    public_subnet_ids          = list(string)
    private_subnet_ids         = list(string)
    private_route_table_ids    = list(string)
    documents_bucket_arn       = string
    documents_queue_arn        = string
    documents_dlq_arn          = string
    chunks_queue_arn           = string
    chunks_dlq_arn             = string
    database_secret_arn        = string
    database_security_group_id = string
  })
}

variable "namespace" {
  description = "Kubernetes namespace of the services (the k8s overlay's)."
  type        = string
}

variable "kubernetes_version" {
  description = "EKS version."
  type        = string
  default     = "1.32"
}

variable "node_groups" {
  description = "Managed node groups (see modules/eks)."
  type        = any
}

variable "nat_gateway_count" {
  description = "1 (one shared NAT gateway) or 3 (one per zone)."
  type        = number
}

variable "interface_endpoint_services" {
  description = "AWS APIs reached through interface endpoints."
  type        = list(string)
  default     = ["sqs", "bedrock-runtime", "ecr.api", "ecr.dkr", "sts"]
}

variable "endpoint_public_access" {
  description = "Whether the cluster's API is reachable from public_access_cidrs."
  type        = bool
  default     = false
}

variable "public_access_cidrs" {
  description = "Who may reach the public API endpoint."
  type        = list(string)
  default     = []
}

variable "admin_role_arns" {
  description = "Cluster administrators."
  type        = list(string)
  default     = []
}

variable "cache_node_type" {
  description = "ElastiCache node type."
  type        = string
  default     = "cache.t4g.micro"
}

variable "cache_replicas" {
  description = "Cache replicas besides the primary."
  type        = number
  default     = 0
}

variable "github_repository" {
  description = "owner/name of the repository whose cd workflow deploys here (null: no deploy role)."
  type        = string
  default     = null
}

variable "tags" {
  description = "Tags on every resource."
  type        = map(string)
  default     = {}
}
