output "cluster_name" {
  description = "The cluster."
  value       = aws_eks_cluster.this.name
}

output "cluster_endpoint" {
  description = "The API server."
  value       = aws_eks_cluster.this.endpoint
}

output "cluster_certificate_authority" {
  description = "Base64 CA bundle of the API server."
  value       = aws_eks_cluster.this.certificate_authority[0].data
}

output "node_security_group_id" {
  description = "The cluster security group, which EKS puts on the managed nodes (and so on every pod)."
  value       = aws_eks_cluster.this.vpc_config[0].cluster_security_group_id
}

output "oidc_provider_arn" {
  description = "The IAM OIDC provider that IRSA roles trust."
  value       = aws_iam_openid_connect_provider.this.arn
}

output "oidc_provider_host" {
  description = "The issuer without https://, the prefix of the IRSA condition keys."
  value       = local.oidc_host
}

output "node_role_arn" {
  description = "The nodes' role."
  value       = aws_iam_role.node.arn
}

output "cluster_arn" {
  description = "The cluster's ARN."
  value       = aws_eks_cluster.this.arn
}
