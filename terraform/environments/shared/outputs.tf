output "repository_urls" {
  description = "Image repositories (ECR_REPOSITORY of the cd workflow is the name)."
  value       = module.registry.repository_urls
}

output "ecr_push_role_arn" {
  description = "AWS_ECR_PUSH_ROLE_ARN of the repository's Actions variables."
  value       = module.ci.role_arns["ecr-push"]
}
