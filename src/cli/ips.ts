/** `authz ips …`: client addresses, as the brute-force limits count them. */
import type { Command } from 'commander';
import type { CliContext } from './context.js';
import { isoDate } from './output.js';

export function registerIpCommands(program: Command, context: CliContext): void {
  const ips = program.command('ips').description('client IP addresses, as the brute-force limits count them');

  ips
    .command('unlock')
    .description('lift the locks that wrong passwords and failed client authentications put on an address')
    .argument('<address>', 'an IPv4 or IPv6 address, as the audit log shows it')
    .action(async (address: string) => {
      const lifted = await (await context.services()).locks.unlockIp(address);
      const described = [
        lifted.signIn && `the sign-in lock (until ${isoDate(lifted.signIn)})`,
        lifted.clientAuthentication && `the client-authentication lock (until ${isoDate(lifted.clientAuthentication)})`,
      ].filter(Boolean);
      process.stdout.write(described.length ? `${address}: lifted ${described.join(' and ')}\n` : `${address} was not locked\n`);
    });
}
