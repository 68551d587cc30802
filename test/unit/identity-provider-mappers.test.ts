/**
 * What a provider's claims map to (src/federation/mappers.ts): which roles are granted and taken away, which
 * attributes set or removed, and what is left alone.
 */
import { changesFor, claimsRead, mapClaims, unmetRequirement } from '../../src/federation/mappers.js';

const mappers = {
  roles: [
    { role: 'staff' },
    { role: 'admin', claim: 'groups', value: 'idp-admins' },
    { role: 'admin', claim: 'org.is_owner', value: true },
    { role: 'level-3', claim: 'level', value: '3' },
  ],
  attributes: { tenant_id: 'tid', departments: 'org.departments', badge: 'badge' },
  syncMode: 'force' as const,
};

test('a role is granted when one of its mappers matches (a value, or a list holding it) and taken away when none does', () => {
  expect(mapClaims(mappers, { groups: ['users', 'idp-admins'], level: 3 })).toMatchObject({ grant: ['staff', 'admin', 'level-3'], revoke: [] });
  expect(mapClaims(mappers, { groups: 'idp-admins' })).toMatchObject({ grant: ['staff', 'admin'], revoke: ['level-3'] });
  expect(mapClaims(mappers, { org: { is_owner: 'true' } })).toMatchObject({ grant: ['staff', 'admin'] });
  expect(mapClaims(mappers, { groups: [{ name: 'idp-admins' }] })).toMatchObject({ grant: ['staff'], revoke: ['admin', 'level-3'] });
});

test('attributes are copied from claims, nested ones too; a claim gone removes its attribute; a value no attribute holds is left alone', () => {
  const mapped = mapClaims(mappers, { tid: 'acme', org: { departments: ['sales', 'support'] }, badge: { nested: true } });
  expect(mapped?.attributes).toEqual({ tenant_id: 'acme', departments: ['sales', 'support'] });
  expect(mapClaims(mappers, {})?.attributes).toEqual({ tenant_id: null, departments: null, badge: null });
  expect(mapClaims({ roles: [], attributes: {}, syncMode: 'force' }, { tid: 'x' })).toBeUndefined();
});

test('the changes are only what differs: roles the entry does not name stay, and an account already there needs none', () => {
  const mapped = { grant: ['staff'], revoke: ['admin'], attributes: { tenant_id: 'acme', gone: null } };
  expect(changesFor({ roles: ['admin', 'auditor'], attributes: { gone: 'x' } }, mapped)).toEqual({ roles: ['auditor', 'staff'], attributes: { tenant_id: 'acme', gone: null } });
  expect(changesFor({ roles: ['auditor', 'staff'], attributes: { tenant_id: 'acme' } }, mapped)).toBeUndefined();
  expect(changesFor({ roles: ['staff'], attributes: { tenant_id: 'other' } }, mapped)).toEqual({ attributes: { tenant_id: 'acme' } });
});

test('the claims a mapping reads, by their top-level name (an ID token without one is completed from userinfo)', () => {
  expect(claimsRead(mappers)).toEqual(['groups', 'org', 'level', 'tid', 'badge']);
});

test('requirements: each claim must have one of its values, or hold one in a list; the first unmet is named', () => {
  const requirements = [
    { claim: 'hd', values: ['example.com', 'example.org'] },
    { claim: 'groups', values: ['staff'] },
  ];
  expect(unmetRequirement(requirements, { hd: 'example.org', groups: ['x', 'staff'] })).toBeUndefined();
  expect(unmetRequirement(requirements, { hd: 'gmail.com', groups: ['staff'] })).toBe(requirements[0]);
  expect(unmetRequirement(requirements, { hd: 'example.com' })).toBe(requirements[1]);
  expect(unmetRequirement([], {})).toBeUndefined();
  expect(claimsRead({ roles: [], attributes: {}, syncMode: 'force' }, requirements)).toEqual(['hd', 'groups']);
});
