//! The node's HTTP surface as a whole: the front door every connection goes through
//! (proxy routes to servers, the rest to the hub), the hub's router assembled from each
//! surface's routes, the small answers every surface gives, and `next` validation.

pub mod front;
pub mod next_url;
pub mod respond;
pub mod routes;
