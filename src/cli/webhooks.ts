/** `authz webhooks …`: where delivery to WEBHOOK_URL stands, and getting a held queue going again. */
import type { Command } from 'commander';
import { InputError } from '../errors.js';
import { WebhookDelivery } from '../webhooks/webhook-delivery.js';
import type { CliContext } from './context.js';
import { isoDate, printJson, printTable } from './output.js';

export function registerWebhookCommands(program: Command, context: CliContext): void {
  const webhooks = program.command('webhooks').description('audit events sent to WEBHOOK_URL');
  const delivery = async () => {
    const settings = context.config.webhook;
    if (!settings) throw new InputError('WEBHOOK_URL is not set: no audit events are sent');
    return new WebhookDelivery((await context.services()).db, settings);
  };

  webhooks
    .command('status')
    .description('the last event delivered, how many wait, and whether the queue is held by a failing event')
    .option('--json', 'print JSON')
    .action(async (options: { json?: boolean }) => {
      const status = await (await delivery()).status();
      if (!status) throw new InputError('no server has sent to WEBHOOK_URL yet: it starts at its first run after the server starts');
      if (options.json) return printJson(status);
      printTable([
        {
          url: status.url,
          last_event: status.lastEventId ?? 'none yet',
          pending: status.pending,
          failures: status.failures,
          retry_at: isoDate(status.retryAt) ?? '',
          last_error: status.lastError ?? '',
        },
      ]);
    });

  webhooks
    .command('retry')
    .description('try the event the queue is held at again at the next run (within a second), not after its wait')
    .action(async () => {
      const retried = await (await delivery()).retryNow();
      process.stdout.write(retried ? 'the held event is tried again within a second\n' : 'nothing to retry: no server has sent to WEBHOOK_URL yet\n');
    });

  webhooks
    .command('skip')
    .description('skip the event the queue is held at, one the endpoint will never take; the next follow')
    .action(async () => {
      const services = await context.services();
      const skipped = await (await delivery()).skipHeld();
      if (!skipped) return void process.stdout.write('no event is waiting\n');
      services.audit.record({ type: 'webhook_event_skipped', outcome: 'success', detail: { by: 'cli', event: skipped.id, eventType: skipped.type } });
      process.stdout.write(`skipped event ${skipped.id} (${skipped.type}); the next are sent from the next run\n`);
    });
}
