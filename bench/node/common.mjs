// What the pg-boss and BullMQ scripts share with the Python side of the benchmark.
//
// - now(): wall-clock seconds with sub-millisecond resolution (Date.now() has 1 ms), on
//   the same clock as Python's time.time(): the benchmark compares the two.
// - reportStart(seq): a handler's first line, one UDP datagram "<seq> <now()>" to
//   BENCH_PROBE_ADDR, exactly what bench/probe.py does for the Python workers.
// - serveSends(send): the sender protocol. The benchmark writes one seq per line on
//   stdin; each is sent as one job and answered on stdout with "<seq> <now()>" taken
//   right after the send resolved, i.e. when the store acknowledged it. "ready" comes
//   first, once the client is connected.
// - reply(value): one JSON line on stdout, how the one-shot commands answer.

import dgram from 'node:dgram'
import readline from 'node:readline'

export function now () {
  return (performance.timeOrigin + performance.now()) / 1000
}

let probeSocket = null
let probeHost = null
let probePort = 0

export function reportStart (seq) {
  const at = now()
  if (probeSocket === null) {
    const address = process.env.BENCH_PROBE_ADDR
    if (!address) return
    const colon = address.lastIndexOf(':')
    probeHost = address.slice(0, colon)
    probePort = Number(address.slice(colon + 1))
    probeSocket = dgram.createSocket('udp4')
    probeSocket.unref()
  }
  probeSocket.send(`${seq} ${at}`, probePort, probeHost)
}

export async function serveSends (send) {
  process.stdout.write('ready\n')
  const lines = readline.createInterface({ input: process.stdin, crlfDelay: Infinity })
  for await (const line of lines) {
    const seq = line.trim()
    if (!seq) continue
    await send(seq)
    process.stdout.write(`${seq} ${now()}\n`)
  }
}

export function reply (value) {
  process.stdout.write(JSON.stringify(value) + '\n')
}

export function required (name) {
  const value = process.env[name]
  if (!value) {
    console.error(`${name} is not set`)
    process.exit(2)
  }
  return value
}

export function number (name, fallback) {
  const raw = process.env[name]
  if (raw === undefined || raw === '') return fallback
  const value = Number(raw)
  if (!Number.isInteger(value) || value < 1) {
    console.error(`${name}=${raw}: a whole number of at least 1 is expected`)
    process.exit(2)
  }
  return value
}

// The benchmark stops workers with SIGTERM and expects them gone: exit at once, as the
// Python peers' workers do when they are stopped between measurements.
export function exitOnTerm () {
  for (const signal of ['SIGTERM', 'SIGINT']) {
    process.on(signal, () => process.exit(0))
  }
}
