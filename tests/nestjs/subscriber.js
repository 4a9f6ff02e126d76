'use strict';
/*
 * A NestJS microservice on the Redis transport that subscribes to fcgi-auth
 * events the way an application would: @EventPattern('user.registered').
 * Plain JavaScript, so the decorators are applied by hand (what TypeScript
 * emits for them).  Each event handled is printed on stdout as one line
 *     EVENT <pattern> <data as JSON>
 * (the data is exactly what the handler was given); "READY" once listening.
 * Run by tests/e2e/test_events.py:  node subscriber.js <redis-port> [host]
 */
require('reflect-metadata');
const { Controller, Logger } = require('@nestjs/common');
const { NestFactory } = require('@nestjs/core');
const { EventPattern, Payload, Transport } = require('@nestjs/microservices');

const port = parseInt(process.argv[2] || '6379', 10);
const host = process.argv[3] || '127.0.0.1';
const patterns = (process.env.FA_NEST_PATTERNS || 'user.registered')
  .split(',').filter(Boolean);

function emit(pattern, data) {
  process.stdout.write('EVENT ' + pattern + ' ' + JSON.stringify(data) + '\n');
}

class EventsController {}

/* what `@EventPattern(p) onX(@Payload() data) {…}` compiles to */
patterns.forEach((p, i) => {
  const name = 'on' + i;
  Object.defineProperty(EventsController.prototype, name, {
    value: function (data) { emit(p, data); },
    writable: true, configurable: true, enumerable: false,
  });
  const desc = Object.getOwnPropertyDescriptor(EventsController.prototype, name);
  Payload()(EventsController.prototype, name, 0);
  EventPattern(p)(EventsController.prototype, name, desc);
  Reflect.defineMetadata('design:paramtypes', [Object], EventsController.prototype, name);
});
Controller()(EventsController);

class AppModule {}
Reflect.defineMetadata('controllers', [EventsController], AppModule);
Reflect.defineMetadata('imports', [], AppModule);
Reflect.defineMetadata('providers', [], AppModule);

async function main() {
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

main().catch((e) => {
  Logger.error(e && e.stack ? e.stack : String(e));
  process.exit(1);
});
