/** `authz groups …`: groups of users, whose roles every member holds (src/accounts/groups.ts). */
import type { Command } from 'commander';
import type { Group } from '../accounts/groups.js';
import type { CliContext } from './context.js';
import { isoDate, printJson, printTable, splitList } from './output.js';

const summary = (group: Group) => ({
  name: group.name,
  roles: group.roles.join(',') || undefined,
  description: group.description ?? undefined,
  created: isoDate(group.createdAt),
});

export function registerGroupCommands(program: Command, context: CliContext): void {
  const groups = program.command('groups').description('groups of users: every member holds the group’s roles (Keycloak’s groups)');

  groups
    .command('add')
    .description('create a group')
    .argument('<name>', 'letters, digits, spaces, ".", "_", ":" or "-", in parts separated by "/" (staff/admins)')
    .option('--roles <roles>', 'comma-separated roles every member holds', splitList, [])
    .option('--description <text>', 'what the group is')
    .option('--json', 'print JSON')
    .action(async (name: string, options) => {
      const group = await (await context.services()).groups.create({ name, roles: options.roles, description: options.description });
      if (options.json) return printJson(group);
      process.stdout.write(`created group ${group.name}${group.roles.length ? ` (roles: ${group.roles.join(', ')})` : ''}\n`);
    });

  groups
    .command('list')
    .description('list groups')
    .option('--json', 'print JSON')
    .action(async (options) => {
      const records = await (await context.services()).groups.list();
      if (options.json) printJson(records);
      else printTable(records.map(summary), 'no groups yet: add one with `authz groups add <name> --roles …`');
    });

  groups
    .command('update')
    .description('change a group’s roles or description; members hold the new roles in their next tokens')
    .argument('<name>')
    .option('--roles <roles>', 'the roles every member holds, comma-separated, replacing the old ones ("" for none)', splitList)
    .option('--description <text>', 'what the group is ("" removes it)')
    .option('--json', 'print JSON')
    .action(async (name: string, options) => {
      if (options.roles === undefined && options.description === undefined) {
        program.error('error: nothing to change: give --roles or --description', { exitCode: 2 });
      }
      const description = options.description === undefined ? undefined : options.description || null;
      const group = await (await context.services()).groups.update(name, { roles: options.roles, description });
      if (options.json) return printJson(group);
      process.stdout.write(`updated group ${group.name} (roles: ${group.roles.join(', ') || 'none'})\n`);
    });

  groups
    .command('remove')
    .description('delete a group and take it off its members (they keep their own roles)')
    .argument('<name>')
    .action(async (name: string) => {
      const { members } = await (await context.services()).groups.remove(name);
      process.stdout.write(`removed group ${name} (${members} member${members === 1 ? '' : 's'} taken off it)\n`);
    });

  groups
    .command('members')
    .description('list a group’s members (add one with `authz users set-groups`)')
    .argument('<name>')
    .option('--json', 'print JSON')
    .action(async (name: string, options) => {
      const members = await (await context.services()).groups.members(name);
      if (options.json) printJson(members);
      else printTable(members.map((member) => ({ id: member.id, email: member.email, name: member.name ?? undefined })), `no members in ${name}: add one with \`authz users set-groups <email> ${name}\``);
    });
}
