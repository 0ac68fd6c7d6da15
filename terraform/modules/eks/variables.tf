variable "name" {
  description = "Cluster name, e.g. rag-dev."
  type        = string
}

variable "kubernetes_version" {
  description = "Kubernetes minor version of the control plane and the nodes."
  type        = string
  default     = "1.32"
}

variable "subnet_ids" {
  description = "Private subnets of the control plane's interfaces and the nodes."
  type        = list(string)
}

variable "kms_key_arn" {
  description = "Key for secrets encryption and the control-plane log group."
  type        = string
}

variable "endpoint_public_access" {
  description = "Whether the API server is reachable from outside the VPC (for CD runners), limited to public_access_cidrs."
  type        = bool
  default     = false
}

variable "public_access_cidrs" {
  description = "Addresses allowed to reach the public API endpoint when it is on."
  type        = list(string)
  default     = []

  validation {
    condition     = !contains(var.public_access_cidrs, "0.0.0.0/0")
    error_message = "The public API endpoint is never open to the whole internet."
  }
}

variable "admin_role_arns" {
  description = "IAM roles given cluster-admin through EKS access entries, besides the identity that creates the cluster (which must not be listed again)."
  type        = list(string)
  default     = []
}

variable "node_groups" {
  description = "Managed node groups by name."
  type = map(object({
    instance_types = list(string)
    capacity_type  = optional(string, "ON_DEMAND") # SPOT in dev
    ami_type       = optional(string, "AL2023_x86_64_STANDARD")
    min_size       = number
    max_size       = number
    desired_size   = number
    labels         = optional(map(string), {})
    taints = optional(list(object({
      key    = string
      value  = optional(string)
      effect = string
    })), [])
  }))

  validation {
    condition     = alltrue([for g in values(var.node_groups) : contains(["ON_DEMAND", "SPOT"], g.capacity_type)])
    error_message = "capacity_type is ON_DEMAND or SPOT."
  }
}

variable "node_disk_size_gib" {
  description = "Root volume of each node."
  type        = number
  default     = 50
}

variable "log_retention_days" {
  description = "Days control-plane logs are kept."
  type        = number
  default     = 365
}

variable "tags" {
  description = "Tags on every resource."
  type        = map(string)
  default     = {}
}
