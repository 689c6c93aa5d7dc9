#!/usr/bin/env node
// The reference for bench/things.sh: an Eclipse Thingweb node-wot (0.7.8) client that consumes
// every Thing a directory lists and reads every readable property of each, every interval --
// what mamori's Thing monitor does, minus its checks: node-wot 0.7.8's readProperty only decodes
// the reply (JsonCodec: JSON.parse), it validates nothing against the TD's DataSchema.
//
// A client-only Servient with the HTTP binding's HttpClientFactory; TDs fetched with
// Helpers.fetch (0.7.x has no WoT.requestThingDescription), consumed with WoT.consume. Each
// Thing polls on its own 1 s timer, offset by i/N of the interval (mamori staggers the same way),
// its properties read at once; a round still running when the next is due is skipped (counted).
//
// stdout: one JSON line `{"ready":...}` once every Thing is consumed and polling, then one JSON
// line of cumulative counters and a latency histogram (1 % log buckets) on each SIGUSR2;
// SIGTERM/SIGINT stop it.
//
//   NODE_PATH=.wot-lab/node_modules node bench/things/nodewot-poller.js DIRECTORY_URL [INTERVAL_MS]
"use strict";

// node-wot 0.7 logs through console.debug/info (the CLI mutes them by log level): muted here,
// so the figure is not a terminal's. (Its debug strings are still built on every call.)
console.debug = () => {};
console.info = () => {};
let warnings = 0;
const warn = console.warn;
console.warn = (...args) => {
    if (warnings++ < 5) warn(...args);
};

const { Servient, Helpers } = require("@node-wot/core");
const { HttpClientFactory } = require("@node-wot/binding-http");

const directory = process.argv[2];
const intervalMs = Number(process.argv[3] || 1000);
if (!directory) {
    process.stderr.write("usage: nodewot-poller.js DIRECTORY_URL [INTERVAL_MS]\n");
    process.exit(2);
}

// latency histogram: bucket i holds (1.01^(i-1), 1.01^i] microseconds
const LOG_STEP = Math.log(1.01);
const hist = new Map();
function observe(seconds) {
    const us = Math.max(seconds * 1e6, 1);
    const i = Math.ceil(Math.log(us) / LOG_STEP);
    hist.set(i, (hist.get(i) || 0) + 1);
}

const stats = { rounds: 0, reads: 0, ok: 0, errors: 0, skipped: 0, inflight: 0 };
const errorKinds = new Map();
function failed(err) {
    stats.errors++;
    const kind = String((err && (err.code || err.message)) || err).slice(0, 120);
    errorKinds.set(kind, (errorKinds.get(kind) || 0) + 1);
}

// a few requests at a time while loading (node-wot opens a connection per request)
async function mapLimited(items, limit, fn) {
    const out = new Array(items.length);
    let next = 0;
    async function worker() {
        while (next < items.length) {
            const i = next++;
            out[i] = await fn(items[i], i);
        }
    }
    await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
    return out;
}

function readable(td) {
    return Object.entries(td.properties || {})
        .filter(([, p]) => p.writeOnly !== true)
        .filter(([, p]) => (p.forms || []).some((f) => {
            const op = f.op === undefined ? ["readproperty"] : [].concat(f.op);
            return op.includes("readproperty");
        }))
        .map(([name]) => name);
}

async function main() {
    const servient = new Servient();
    servient.addClientFactory(new HttpClientFactory(null));
    const WoT = await servient.start();
    const helpers = new Helpers(servient);
    const listed = await helpers.fetch(directory);
    const urls = Array.isArray(listed) ? listed : [directory];
    const things = await mapLimited(urls, 16, async (url) => {
        const td = await helpers.fetch(url);
        const thing = await WoT.consume(td);
        return { thing, props: readable(td), busy: false };
    });
    const props = things.reduce((n, t) => n + t.props.length, 0);

    function round(t) {
        if (t.busy) {
            stats.skipped++;
            return;
        }
        t.busy = true;
        stats.rounds++;
        let left = t.props.length;
        for (const name of t.props) {
            const started = process.hrtime.bigint();
            stats.reads++;
            stats.inflight++;
            t.thing.readProperty(name).then(
                () => stats.ok++,
                failed,
            ).finally(() => {
                observe(Number(process.hrtime.bigint() - started) / 1e9);
                stats.inflight--;
                if (--left === 0) t.busy = false;
            });
        }
    }
    const timers = [];
    things.forEach((t, i) => {
        timers.push(setTimeout(() => {
            round(t);
            timers.push(setInterval(() => round(t), intervalMs));
        }, (i * intervalMs) / things.length));
    });

    process.on("SIGUSR2", () => {
        const mem = process.memoryUsage();
        process.stdout.write(JSON.stringify({
            t_ns: String(process.hrtime.bigint()),
            ...stats,
            heap_mib: +(mem.heapUsed / 1048576).toFixed(1),
            errors_by_kind: Object.fromEntries(errorKinds),
            hist: Object.fromEntries(hist),
        }) + "\n");
    });
    const stop = () => {
        timers.forEach((h) => clearTimeout(h));
        process.exit(0);
    };
    process.on("SIGTERM", stop);
    process.on("SIGINT", stop);
    process.stdout.write(JSON.stringify({ ready: true, things: things.length, properties: props }) + "\n");
}

main().catch((e) => {
    process.stderr.write(`nodewot-poller: ${e && e.stack ? e.stack : e}\n`);
    process.exit(1);
});
