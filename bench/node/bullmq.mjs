// BullMQ as measured by `python -m bench` (bench/bullmq_peer.py starts these commands).
//
//   node bullmq.mjs enqueue N   addBulk() of N noop jobs; prints {"seconds"}
//   node bullmq.mjs sender      one probe job per seq read on stdin (see common.mjs)
//   node bullmq.mjs worker      a Worker on each queue until SIGTERM
//
// Redis is BENCH_REDIS_URL: a server of the benchmark's own (bench/redis_server.py), with
// the persistence BullMQ's production guide recommends (AOF, fsync every second) and
// maxmemory-policy noeviction. Settings: a Worker per queue with `concurrency`
// BENCH_BULLMQ_CONCURRENCY (BullMQ takes the next job in the same script call that
// finishes the last one, per slot; it has no batch fetch outside BullMQ Pro), every other
// option at its default: finished jobs are kept in the completed set (their processedOn
// and finishedOn give the drain window), stalled-job checks every 30 s.

import { Queue, Worker } from 'bullmq'
import { exitOnTerm, number, reply, reportStart, required, serveSends } from './common.mjs'

const address = new URL(required('BENCH_REDIS_URL'))
const connection = { host: address.hostname, port: Number(address.port) }

async function enqueue (n) {
  const queue = new Queue('noop', { connection })
  await queue.waitUntilReady() // connected before the clock starts
  const started = performance.now()
  const jobs = new Array(n)
  for (let i = 0; i < n; i++) jobs[i] = { name: 'noop', data: { n: i } }
  await queue.addBulk(jobs)
  const seconds = (performance.now() - started) / 1000
  await queue.close()
  reply({ seconds })
}

async function sender () {
  const queue = new Queue('probe', { connection })
  await queue.waitUntilReady()
  await serveSends(seq => queue.add('probe', { seq }))
  await queue.close()
}

async function worker () {
  exitOnTerm()
  const concurrency = number('BENCH_BULLMQ_CONCURRENCY', 100)
  const workers = [
    new Worker('noop', async () => {}, { connection, concurrency }),
    new Worker('probe', async job => { reportStart(job.data.seq) }, { connection, concurrency })
  ]
  for (const w of workers) {
    w.on('error', error => console.error('BullMQ worker error:', error))
    await w.waitUntilReady()
  }
}

const [command, arg] = process.argv.slice(2)
const commands = { enqueue: () => enqueue(Number(arg)), sender, worker }
if (!(command in commands)) {
  console.error(`usage: node bullmq.mjs ${Object.keys(commands).join('|')}`)
  process.exit(2)
}
await commands[command]()
