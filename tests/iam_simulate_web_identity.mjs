// Evaluates trust-policy requests with iam-simulate's engine, skipping its check
// of context keys: a JSON list of simulations on stdin, a JSON list of results
// on stdout. runSimulation (tests/iam_simulate.mjs) drops every context key its
// Service Authorization data does not list for the action, and that data lists
// no `token.actions.githubusercontent.com:sub` or `:aud` for
// sts:AssumeRoleWithWebIdentity: a GitHub trust policy could never match there.
// The trust policy is still validated as one (iam-policy, iam-simulate's own parser).
import { createValidatedPolicy, validateTrustPolicy } from '@cloud-copilot/iam-policy'
import { runUnsafeSimulation } from '@cloud-copilot/iam-simulate'

let input = ''
for await (const chunk of process.stdin) input += chunk
const answers = JSON.parse(input).map((simulation) => {
  const trust = createValidatedPolicy(simulation.resourcePolicy, validateTrustPolicy, { name: 'TrustPolicy' })
  if (trust.errors.length > 0) return { result: null, errors: trust.errors }
  return { result: runUnsafeSimulation({ ...simulation, resourcePolicy: trust }, {}), errors: null }
})
process.stdout.write(JSON.stringify(answers))
