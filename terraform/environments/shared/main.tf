# What every environment of the account shares, applied once before them: the image
# repository (one image per commit, promoted by digest from dev to prod) and GitHub's OIDC
# provider (one per account), with the role the cd workflow pushes images with.
# Never paused: it costs the images' storage and one KMS key.

module "kms" {
  source = "../../modules/kms"
  name   = "rag-shared"
}

module "registry" {
  source           = "../../modules/registry"
  repository_names = ["llmops-rag-pipeline"]
  kms_key_arn      = module.kms.key_arn
}

# GitHub Actions' OIDC tokens; AWS verifies GitHub's certificate itself, the thumbprints are
# only required by the API.
resource "aws_iam_openid_connect_provider" "github" {
  url             = "https://token.actions.githubusercontent.com"
  client_id_list  = ["sts.amazonaws.com"]
  thumbprint_list = ["6938fd4d98bab03faadb97b34396831e3780aea1", "1c58a3a8518e8759bf075b76b750d4f2df264fcd"]
}

module "ci" {
  source            = "../../modules/ci"
  name              = "rag-shared"
  repository        = var.github_repository
  oidc_provider_arn = aws_iam_openid_connect_provider.github.arn
  ecr_push = {
    repository_arns = values(module.registry.repository_arns)
  }
}
