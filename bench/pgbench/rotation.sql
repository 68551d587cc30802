-- One refresh-token rotation as the server makes it (src/store/refresh-token-adapter.ts): the token read with its
-- grant and user, then its consumption and its successor in one statement. Tables come from search_path; pool(n, id)
-- numbers the refresh tokens to present (see rotation.sh). A token drawn twice is found consumed and not replaced.
\set n random(1, :pool_size)
select token.payload,
       floor(extract(epoch from token.consumed_at))::float8 as consumed,
       grant_record.payload as grant_payload,
       floor(extract(epoch from grant_record.consumed_at))::float8 as grant_consumed,
       to_jsonb(account) as account
from oidc_models as token
left join oidc_models as grant_record
  on grant_record.model = 'Grant'
  and grant_record.id = translate(encode(sha256(convert_to(token.grant_id, 'UTF8')), 'base64'), '+/=', '-_')
  and (grant_record.expires_at is null or grant_record.expires_at > now() - 5 * interval '1 second')
left join users as account
  on account.id = case when token.account_id ~ '^[0-9A-Fa-f-]{36}$' then token.account_id::uuid end
where token.model = 'RefreshToken' and token.id = (select id from pool where n = :n)
  and (token.expires_at is null or token.expires_at > now() - 5 * interval '1 second');
with consumed as (
  update oidc_models set consumed_at = now()
  where model = 'RefreshToken' and id = (select id from pool where n = :n) and consumed_at is null
  returning payload, grant_id, account_id
)
insert into oidc_models (model, id, payload, grant_id, uid, user_code, account_id, expires_at, consumed_at)
select 'RefreshToken', md5(random()::text) || md5(random()::text), payload, grant_id, null, null, account_id,
       now() + 86400 * interval '1 second', null
from consumed;
