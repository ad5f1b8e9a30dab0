//! CCAI Platform (ex-UJET) Apps and Manager API client.
