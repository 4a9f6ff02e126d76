'use strict';
/*
 * The NestJS side of the auth.validate_token RPC (run by
 * tests/e2e/test_rpc.py), plain JavaScript: decorators applied by hand.
 *
 *   node rpc.js client <redis-port> [host]
 *     A ClientProxy on Transport.REDIS, the way a NestJS service calls the
 *     auth service.  Reads one JSON command per line on stdin, answers one
 *     JSON line on stdout ("READY" first):
 *       {"op":"send","pattern":p,"data":d,"timeout":ms}
 *           -> {"ok":true,"response":r,"ms":t} | {"ok":false,"err":e}
 *       {"op":"seq","pattern":p,"data":d,"n":N}      N calls one after another
 *           -> {"ok":true,"n":N,"median_ms","p99_ms","max_ms","answers":{...}}
 *       {"op":"par","pattern":p,"data":d,"n":N,"callers":C}
 *           -> {"ok":true,"n":N,"seconds","per_second","answers":{...}}
 *
 *   node rpc.js server <redis-port> <pattern> [host]
 *     A NestJS auth service with @MessagePattern(pattern) answering the
 *     contract's shape itself (HS256 checked with FA_JWT_SECRET; no
 *     revocation list), so the test can compare its answers with
 *     fcgi-auth's.  Prints READY once subscribed.
 */
require('reflect-metadata');
const crypto = require('crypto');
const readline = require('readline');
const { Controller, Logger } = require('@nestjs/common');
const { NestFactory } = require('@nestjs/core');
const {
  ClientProxyFactory, MessagePattern, Payload, Transport,
} = require('@nestjs/microservices');
const { firstValueFrom, timeout: rxTimeout } = require('rxjs');

const mode = process.argv[2];
const port = parseInt(process.argv[3] || '6379', 10);

function out(obj) {
  process.stdout.write(JSON.stringify(obj) + '\n');
}

/* ---------------------------------------------------------------- client */

async function call(client, pattern, data, ms) {
  const t0 = process.hrtime.bigint();
  const response = await firstValueFrom(
    client.send(pattern, data).pipe(rxTimeout(ms || 5000)));
  return { response, ms: Number(process.hrtime.bigint() - t0) / 1e6 };
}

function tally(answers, r) {
  const k = JSON.stringify(r && typeof r === 'object' ? r.valid : r);
  answers[k] = (answers[k] || 0) + 1;
}

async function command(client, c) {
  if (c.op === 'send') {
    try {
      const r = await call(client, c.pattern, c.data, c.timeout);
      return { ok: true, response: r.response, ms: r.ms };
    } catch (e) {
      return { ok: false, err: e && e.name === 'TimeoutError' ? 'timeout' : e };
    }
  }
  if (c.op === 'seq') {
    const times = [];
    const answers = {};
    for (let i = 0; i < c.n; i++) {
      const r = await call(client, c.pattern, c.data, c.timeout);
      times.push(r.ms);
      tally(answers, r.response);
    }
    times.sort((a, b) => a - b);
    return {
      ok: true, n: c.n, answers,
      median_ms: times[Math.floor(times.length / 2)],
      p99_ms: times[Math.min(times.length - 1, Math.ceil(times.length * 0.99) - 1)],
      max_ms: times[times.length - 1],
    };
  }
  if (c.op === 'par') {
    const answers = {};
    let next = 0;
    const t0 = process.hrtime.bigint();
    const worker = async () => {
      while (next < c.n) {
        next++;
        tally(answers, (await call(client, c.pattern, c.data, c.timeout)).response);
      }
    };
    await Promise.all(Array.from({ length: c.callers }, worker));
    const s = Number(process.hrtime.bigint() - t0) / 1e9;
    return { ok: true, n: c.n, seconds: s, per_second: c.n / s, answers };
  }
  return { ok: false, err: 'unknown op' };
}

async function client() {
  const host = process.argv[4] || '127.0.0.1';
  const c = ClientProxyFactory.create({
    transport: Transport.REDIS,
    options: { host, port },
  });
  await c.connect();
  process.stdout.write('READY\n');
  const rl = readline.createInterface({ input: process.stdin });
  for await (const line of rl) {
    if (!line.trim())
      continue;
    try {
      out(await command(c, JSON.parse(line)));
    } catch (e) {
      out({ ok: false, err: String(e && e.message ? e.message : e) });
    }
  }
  await c.close();
  process.exit(0);
}

/* ---------------------------------------------------------------- server */

function b64url(buf) {
  return buf.toString('base64').replace(/=+$/, '').replace(/\+/g, '-').replace(/\//g, '_');
}

/* What a NestJS auth service's handler would answer (no revocation list). */
function validate(data) {
  const secret = process.env.FA_JWT_SECRET || '';
  const tok = data && typeof data.token === 'string' ? data.token : '';
  const parts = tok.split('.');
  if (parts.length !== 3)
    return { valid: false };
  const mac = b64url(crypto.createHmac('sha256', secret)
    .update(parts[0] + '.' + parts[1]).digest());
  if (mac !== parts[2])
    return { valid: false };
  const c = JSON.parse(Buffer.from(parts[1], 'base64url').toString());
  if (typeof c.exp !== 'number' || c.exp < Date.now() / 1000)
    return { valid: false };
  return {
    valid: true, userId: c.sub, email: c.email, roles: c.roles,
    sessionId: c.sid, exp: c.exp, aal: 1,
  };
}

async function server() {
  const pattern = process.argv[4];
  const host = process.argv[5] || '127.0.0.1';
  class AuthController {}
  /* what `@MessagePattern(p) validate(@Payload() data) {…}` compiles to */
  Object.defineProperty(AuthController.prototype, 'validate', {
    value: (data) => validate(data),
    writable: true, configurable: true, enumerable: false,
  });
  const desc = Object.getOwnPropertyDescriptor(AuthController.prototype, 'validate');
  Payload()(AuthController.prototype, 'validate', 0);
  MessagePattern(pattern)(AuthController.prototype, 'validate', desc);
  Reflect.defineMetadata('design:paramtypes', [Object], AuthController.prototype, 'validate');
  Controller()(AuthController);
  class AppModule {}
  Reflect.defineMetadata('controllers', [AuthController], AppModule);
  Reflect.defineMetadata('imports', [], AppModule);
  Reflect.defineMetadata('providers', [], AppModule);
  const app = await NestFactory.createMicroservice(AppModule, {
    transport: Transport.REDIS,
    options: { host, port, retryAttempts: 50, retryDelay: 200 },
    logger: ['error', 'warn'],
  });
  await app.listen();
  process.stdout.write('READY\n');
  const stop = async () => { await app.close(); process.exit(0); };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
}

(mode === 'server' ? server() : client()).catch((e) => {
  Logger.error(e && e.stack ? e.stack : String(e));
  process.exit(1);
});
