//! The replica's shares and share codes (§2.12): by server, by recipient, codes by hash
//! and by server, so a check finds what a user was granted and a listing what a server
//! shares without a scan.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;

use galilean_proto::records::{ShareCodeRecord, ShareRecord, ShareWith};

/// `(owner, server)`.
pub type ServerKey = (String, String);

#[derive(Debug, Default)]
pub struct Shares {
    /// `(owner, server)` → recipient → share.
    by_server: BTreeMap<ServerKey, BTreeMap<ShareWith, Arc<ShareRecord>>>,
    /// Recipient → the servers shared with it.
    to: HashMap<ShareWith, BTreeSet<ServerKey>>,
    /// Code hash → code.
    codes: HashMap<String, Arc<ShareCodeRecord>>,
    /// `(owner, server)` → the hashes of its codes.
    codes_of: BTreeMap<ServerKey, BTreeSet<String>>,
}

impl Shares {
    pub(super) fn set_share(&mut self, rec: ShareRecord) {
        let server = (rec.owner.clone(), rec.server.clone());
        self.to
            .entry(rec.with.clone())
            .or_default()
            .insert(server.clone());
        self.by_server
            .entry(server)
            .or_default()
            .insert(rec.with.clone(), Arc::new(rec));
    }

    /// Removes the share; whether there was one.
    pub(super) fn clear_share(&mut self, owner: &str, server: &str, with: &ShareWith) -> bool {
        let key = (owner.to_owned(), server.to_owned());
        let mut removed = false;
        if let Some(m) = self.by_server.get_mut(&key) {
            removed = m.remove(with).is_some();
            if m.is_empty() {
                self.by_server.remove(&key);
            }
        }
        if let Some(s) = self.to.get_mut(with) {
            s.remove(&key);
            if s.is_empty() {
                self.to.remove(with);
            }
        }
        removed
    }

    pub(super) fn set_code(&mut self, hash: String, rec: ShareCodeRecord) {
        self.codes_of
            .entry((rec.owner.clone(), rec.server.clone()))
            .or_default()
            .insert(hash.clone());
        self.codes.insert(hash, Arc::new(rec));
    }

    pub(super) fn clear_code(&mut self, hash: &str) {
        let Some(rec) = self.codes.remove(hash) else {
            return;
        };
        let key = (rec.owner.clone(), rec.server.clone());
        if let Some(s) = self.codes_of.get_mut(&key) {
            s.remove(hash);
            if s.is_empty() {
                self.codes_of.remove(&key);
            }
        }
    }

    /// The shares of one server, by recipient.
    pub fn of_server<'a>(
        &'a self,
        owner: &str,
        server: &str,
    ) -> impl Iterator<Item = &'a Arc<ShareRecord>> + 'a {
        self.by_server
            .get(&(owner.to_owned(), server.to_owned()))
            .into_iter()
            .flat_map(|m| m.values())
    }

    /// The shares of every server of `owner`.
    pub fn of_owner<'a>(
        &'a self,
        owner: &'a str,
    ) -> impl Iterator<Item = &'a Arc<ShareRecord>> + 'a {
        self.by_server
            .range((owner.to_owned(), String::new())..)
            .take_while(move |((o, _), _)| o == owner)
            .flat_map(|(_, m)| m.values())
    }

    /// The shares granted to `with` itself.
    pub fn to<'a>(&'a self, with: &ShareWith) -> impl Iterator<Item = &'a Arc<ShareRecord>> + 'a {
        let servers = self.to.get(with);
        let with = with.clone();
        servers
            .into_iter()
            .flatten()
            .filter_map(move |key| self.by_server.get(key).and_then(|m| m.get(&with)))
    }

    /// The share of one server with `with`.
    pub fn get(&self, owner: &str, server: &str, with: &ShareWith) -> Option<&Arc<ShareRecord>> {
        self.by_server
            .get(&(owner.to_owned(), server.to_owned()))
            .and_then(|m| m.get(with))
    }

    /// The code whose hash is `hash`.
    pub fn code(&self, hash: &str) -> Option<&Arc<ShareCodeRecord>> {
        self.codes.get(hash)
    }

    /// The codes of one server, with their hashes.
    pub fn codes_of_server<'a>(
        &'a self,
        owner: &str,
        server: &str,
    ) -> impl Iterator<Item = (&'a String, &'a Arc<ShareCodeRecord>)> + 'a {
        self.codes_of
            .get(&(owner.to_owned(), server.to_owned()))
            .into_iter()
            .flatten()
            .filter_map(|h| self.codes.get(h).map(|c| (h, c)))
    }

    /// The codes of every server of `owner`, with their hashes.
    pub fn codes_of_owner<'a>(
        &'a self,
        owner: &'a str,
    ) -> impl Iterator<Item = (&'a String, &'a Arc<ShareCodeRecord>)> + 'a {
        self.codes_of
            .range((owner.to_owned(), String::new())..)
            .take_while(move |((o, _), _)| o == owner)
            .flat_map(|(_, hashes)| hashes.iter())
            .filter_map(|h| self.codes.get(h).map(|c| (h, c)))
    }

    /// Every share, in key order (for the replica's digest and key list).
    pub fn all(&self) -> impl Iterator<Item = &Arc<ShareRecord>> {
        self.by_server.values().flat_map(|m| m.values())
    }

    /// Every code, with its hash, in no particular order.
    pub fn all_codes(&self) -> impl Iterator<Item = (&String, &Arc<ShareCodeRecord>)> {
        self.codes.iter()
    }
}
