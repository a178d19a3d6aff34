"""Account setup as code: what one stage's AWS account needs before CI can deliver to it.

Per stage, deployed once into that stage's account with an administrator's
credentials (`account_setup/app.py`): GitHub's OIDC provider, the role the
stage's GitHub environment deploys with, and, where a later stage promotes
from this one, the role that later stage reads this stage's artifact with.
"""
