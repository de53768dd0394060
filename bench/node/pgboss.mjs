// pg-boss as measured by `python -m bench` (bench/pgboss_peer.py starts these commands).
//
//   node pgboss.mjs install     create the schema and the two queues, notify on
//   node pgboss.mjs enqueue N   insert N noop jobs in one insert() call; prints {"seconds"}
//   node pgboss.mjs sender      one probe job per seq read on stdin (see common.mjs)
//   node pgboss.mjs worker      work() on both queues until SIGTERM
//
// The database is BENCH_PGBOSS_URL. Settings, each documented by pg-boss:
// - useListenNotify on the worker's instance and notify: true on both queues: a send
//   wakes the worker at once; polling stays as the backstop (30 s while NOTIFY works);
// - work() with batchSize BENCH_PGBOSS_BATCH jobs per fetch (one fetch statement, one
//   completion statement per batch), localConcurrency BENCH_PGBOSS_LOCAL fetch loops, and
//   burstWhenBatchFull: a full batch is followed by the next fetch with no delay (without
//   it a worker waits its polling interval between fetches, however long the backlog);
// - the producers (enqueue, sender) run with supervise and schedule off: maintenance and
//   cron belong to the worker's instance, which runs both at their defaults.

import { PgBoss } from 'pg-boss'
import { exitOnTerm, number, reply, reportStart, required, serveSends } from './common.mjs'

const url = required('BENCH_PGBOSS_URL')
const QUEUES = ['noop', 'probe']

function boss (options = {}) {
  const instance = new PgBoss({ connectionString: url, ...options })
  instance.on('error', error => console.error('pg-boss error:', error))
  return instance
}

function producer () {
  return boss({ supervise: false, schedule: false, migrate: false })
}

async function install () {
  const instance = boss()
  await instance.start()
  for (const name of QUEUES) {
    await instance.createQueue(name, { notify: true })
  }
  await instance.stop({ graceful: false })
  reply({ installed: QUEUES })
}

async function enqueue (n) {
  const instance = producer()
  await instance.start()
  await instance.getQueue('noop') // the pool's connection is open before the clock starts
  const started = performance.now()
  const jobs = new Array(n)
  for (let i = 0; i < n; i++) jobs[i] = { data: { n: i } }
  await instance.insert('noop', jobs)
  const seconds = (performance.now() - started) / 1000
  await instance.stop({ graceful: false })
  reply({ seconds })
}

async function sender () {
  const instance = producer()
  await instance.start()
  await serveSends(seq => instance.send('probe', { seq }))
  await instance.stop({ graceful: false })
}

async function worker () {
  exitOnTerm()
  const options = {
    batchSize: number('BENCH_PGBOSS_BATCH', 100),
    localConcurrency: number('BENCH_PGBOSS_LOCAL', 1),
    burstWhenBatchFull: true
  }
  const instance = boss({ useListenNotify: true })
  await instance.start()
  await instance.work('noop', options, async () => {})
  await instance.work('probe', options, async jobs => {
    for (const job of jobs) reportStart(job.data.seq)
  })
}

const [command, arg] = process.argv.slice(2)
const commands = { install, enqueue: () => enqueue(Number(arg)), sender, worker }
if (!(command in commands)) {
  console.error(`usage: node pgboss.mjs ${Object.keys(commands).join('|')}`)
  process.exit(2)
}
await commands[command]()
