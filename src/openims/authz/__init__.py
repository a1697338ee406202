"""RAM policies: the policy language (`document`), its compiled evaluation (`evaluate`), the system
policies every account has (`system`), the compiled-policy cache (`cache`) and the authorization
decider that applies them to every call (`decide`)."""
