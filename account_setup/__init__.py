"""Account setup as code: what one stage's AWS account needs before CI can deliver to it.

Per stage, deployed once into that stage's account with an administrator's
credentials (`account_setup/app.py`): GitHub's OIDC provider, the role the
stage's GitHub environment deploys with, where a later stage promotes from
this one, the role that later stage reads this stage's artifact with, and for
a stage whose deploys wait for reviewers, the read-only role its preview
environment computes the `cdk diff` they see with.
"""
