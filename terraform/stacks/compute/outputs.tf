output "cluster_name" {
  description = "EKS_CLUSTER_NAME of the GitHub environment; aws eks update-kubeconfig --name <this>."
  value       = module.eks.cluster_name
}

output "service_role_arns" {
  description = "eks.amazonaws.com/role-arn of each ServiceAccount."
  value       = module.iam.role_arns
}

output "cache_secret_arn" {
  description = "The cache's AUTH token and rediss:// URL (for the ExternalSecret)."
  value       = module.cache.secret_arn
}

output "nat_public_ips" {
  description = "The environment's outbound addresses (they change on every resume)."
  value       = module.egress.nat_public_ips
}

output "ci_role_arns" {
  description = "AWS_DEPLOY_ROLE_ARN of the GitHub environment."
  value       = try(module.ci[0].role_arns, {})
}
