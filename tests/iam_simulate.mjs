// Evaluates IAM requests with @cloud-copilot/iam-simulate: a JSON list of
// simulations on stdin, a JSON list of {result, errors} on stdout.
import { runSimulation } from '@cloud-copilot/iam-simulate'

let input = ''
for await (const chunk of process.stdin) input += chunk
const answers = []
for (const simulation of JSON.parse(input)) {
  const answer = await runSimulation(simulation, {})
  answers.push({ result: answer.overallResult ?? null, errors: answer.errors ?? null })
}
process.stdout.write(JSON.stringify(answers))
