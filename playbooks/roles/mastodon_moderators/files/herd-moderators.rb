# frozen_string_literal: true

# Herd's moderators on this server: installs an admin API token for each
# moderator granted access, and revokes every token of each one whose access
# ends. Run as the Mastodon user from the live folder:
#
#   RAILS_ENV=production bin/rails runner herd-moderators.rb
#
# Input, in the environment (never on the command line, never on disk):
#   HERD_MODERATOR_ACCESS={"application": "Herd moderation",
#     "scopes": "admin:read:reports ...",
#     "grant": [{"username": "alice", "token": "..."}], "revoke": ["bob"],
#     "webhook": {"url": "https://herd.example/...", "secret": "..."}}
#
# "webhook" (optional) registers the webhook that sends reports to Herd as
# they are filed or change, signed with the secret Herd keeps; given without
# "secret" it removes that webhook (nobody from Herd moderates here any more).
#
# The caller generated the tokens and keeps them; Mastodon stores access
# tokens as given (no hashing), so the value installed here is the one the
# caller uses. Output: one JSON line, without any secret:
#   {"herd_moderators": {"granted": [{"username": "alice", "account_id": "1"}],
#                        "revoked": ["bob"], "webhook": "registered"}}

require 'json'

input = JSON.parse(ENV.fetch('HERD_MODERATOR_ACCESS'))
scopes = input.fetch('scopes')

app = Doorkeeper::Application.find_or_create_by!(name: input.fetch('application'), owner: nil) do |created|
  created.redirect_uri = Doorkeeper.configuration.native_redirect_uri
  created.scopes = scopes
end
app.update!(scopes: scopes) unless app.scopes.to_s == scopes

def live_tokens(app, user)
  Doorkeeper::AccessToken.where(application_id: app.id, resource_owner_id: user.id, revoked_at: nil)
end

granted = []
input.fetch('grant').each do |moderator|
  account = Account.find_local(moderator.fetch('username'))
  raise "no local account #{moderator.fetch('username')}" if account.nil? || account.user.nil?

  value = moderator.fetch('token')
  existing = Doorkeeper::AccessToken.find_by(token: value)
  if existing.nil? || existing.revoked? || existing.resource_owner_id != account.user.id
    created = Doorkeeper::AccessToken.create!(
      application: app, resource_owner_id: account.user.id, scopes: scopes, expires_in: nil
    )
    # Doorkeeper generates a value on create; this one must be the caller's.
    created.update_columns(token: value) # rubocop:disable Rails/SkipsModelValidations
  elsif existing.scopes.to_s != scopes
    existing.update!(scopes: scopes)
  end
  # A moderator holds one token here: an older one (rotated) stops working.
  live_tokens(app, account.user).where.not(token: value).find_each(&:revoke)
  granted << { username: account.username, account_id: account.id.to_s }
end

revoked = []
input.fetch('revoke').each do |username|
  account = Account.find_local(username)
  next if account.nil? || account.user.nil?

  live_tokens(app, account.user).find_each(&:revoke)
  revoked << account.username
end

webhook_state = nil
if (hook = input['webhook'])
  webhook = Webhook.find_or_initialize_by(url: hook.fetch('url'))
  if hook['secret']
    webhook.assign_attributes(events: %w(report.created report.updated), secret: hook['secret'], enabled: true)
    webhook.save!
    webhook_state = 'registered'
  else
    webhook.destroy! if webhook.persisted?
    webhook_state = 'removed'
  end
end

puts({ herd_moderators: { granted: granted, revoked: revoked, webhook: webhook_state } }.to_json)
