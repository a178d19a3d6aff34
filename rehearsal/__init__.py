"""`make rehearse`: the README's commands on local emulators, no AWS account."""
