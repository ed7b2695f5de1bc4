//! A read's messages as Flight data: the schema, then each message's dictionaries (sent again
//! only when they change) and its batch.
//!
//! Arrow-flight's encoder writes each batch's body into a vector that starts empty and doubles
//! as it fills, copying everything it holds at each step: as many bytes again as the message.
//! Here the encoding context outlives its message and its stream. It reserves each body at the
//! capacity the one before needed, so a body is written once, where it stays.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, PoisonError};

use arrow::array::RecordBatch;
use arrow::datatypes::SchemaRef;
use arrow::ipc::writer::{DictionaryTracker, IpcDataGenerator, IpcWriteContext, IpcWriteOptions};
use arrow_flight::FlightData;
use tonic::Status;

/// Encoding contexts between streams. Each holds a reserved body of about a message's size.
#[derive(Default)]
pub struct Contexts {
    idle: Mutex<Vec<IpcWriteContext>>,
}

impl Contexts {
    /// Contexts kept idle at most: one per stream the server sends at once is plenty.
    const KEPT: usize = 8;

    fn take(&self) -> IpcWriteContext {
        let mut context = self.idle.lock().unwrap_or_else(PoisonError::into_inner).pop().unwrap_or_default();
        context.set_reserve_scratch(true);
        context
    }

    fn give_back(&self, context: IpcWriteContext) {
        let mut idle = self.idle.lock().unwrap_or_else(PoisonError::into_inner);
        if idle.len() < Self::KEPT {
            idle.push(context);
        }
    }
}

/// The Flight data of `messages` in `schema`, encoded one message at a time as it is asked for.
pub struct Encoded {
    schema: Option<FlightData>,
    messages: std::vec::IntoIter<RecordBatch>,
    ready: VecDeque<FlightData>,
    options: IpcWriteOptions,
    dictionaries: DictionaryTracker,
    context: Option<IpcWriteContext>,
    contexts: Arc<Contexts>,
}

impl Encoded {
    /// Sends `schema` first, then each of `messages`, with a context from `contexts`.
    pub fn new(schema: &SchemaRef, messages: Vec<RecordBatch>, contexts: Arc<Contexts>) -> Self {
        let options = IpcWriteOptions::default();
        // The schema's message gives each dictionary its id, which the batches' messages use.
        let mut dictionaries = DictionaryTracker::new(false);
        let schema =
            IpcDataGenerator::default().schema_to_bytes_with_dictionary_tracker(schema, &mut dictionaries, &options);
        Self {
            schema: Some(schema.into()),
            messages: messages.into_iter(),
            ready: VecDeque::new(),
            options,
            dictionaries,
            context: Some(contexts.take()),
            contexts,
        }
    }

    fn encode(&mut self, batch: &RecordBatch) -> Result<(), Status> {
        let context = self.context.as_mut().expect("held until dropped");
        let (dictionaries, data) = IpcDataGenerator::default()
            .encode(batch, &mut self.dictionaries, &self.options, context)
            .map_err(|e| Status::internal(format!("cannot encode a message of the read: {e}")))?;
        self.ready.extend(dictionaries.into_iter().map(FlightData::from));
        self.ready.push_back(data.into());
        Ok(())
    }
}

impl Iterator for Encoded {
    type Item = Result<FlightData, Status>;

    fn next(&mut self) -> Option<Self::Item> {
        if let Some(schema) = self.schema.take() {
            return Some(Ok(schema));
        }
        if self.ready.is_empty() {
            let batch = self.messages.next()?;
            if let Err(e) = self.encode(&batch) {
                self.messages = Vec::new().into_iter();
                return Some(Err(e));
            }
        }
        self.ready.pop_front().map(Ok)
    }
}

impl Drop for Encoded {
    fn drop(&mut self) {
        if let Some(context) = self.context.take() {
            self.contexts.give_back(context);
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use arrow::array::{DictionaryArray, Float64Array, Int16Array, StringArray};
    use arrow::datatypes::Int16Type;
    use arrow_flight::utils::flight_data_to_arrow_batch;

    use super::*;

    fn batch(values: std::ops::Range<i32>, symbols: &[&str]) -> RecordBatch {
        let keys = Int16Array::from_iter_values(values.clone().map(|v| (v % symbols.len() as i32) as i16));
        let symbol =
            DictionaryArray::<Int16Type>::try_new(keys, Arc::new(StringArray::from(symbols.to_vec()))).unwrap();
        let close = Float64Array::from_iter_values(values.map(f64::from));
        RecordBatch::try_from_iter([("symbol", Arc::new(symbol) as _), ("close", Arc::new(close) as _)]).unwrap()
    }

    /// Decodes what `encoded` sends back into batches, as a client would.
    fn decoded(mut encoded: Encoded) -> (SchemaRef, Vec<RecordBatch>) {
        let first = encoded.next().unwrap().unwrap();
        let schema = Arc::new(arrow::datatypes::Schema::try_from(&first).unwrap());
        let mut dictionaries = std::collections::HashMap::new();
        let mut batches = Vec::new();
        for data in encoded {
            let data = data.unwrap();
            let message = arrow::ipc::root_as_message(&data.data_header[..]).unwrap();
            if message.header_type() == arrow::ipc::MessageHeader::DictionaryBatch {
                let buffer = arrow::buffer::Buffer::from(data.data_body.to_vec());
                arrow::ipc::reader::read_dictionary(
                    &buffer,
                    message.header_as_dictionary_batch().unwrap(),
                    &schema,
                    &mut dictionaries,
                    &message.version(),
                )
                .unwrap();
            } else {
                batches.push(flight_data_to_arrow_batch(&data, schema.clone(), &dictionaries).unwrap());
            }
        }
        (schema, batches)
    }

    #[test]
    fn every_message_and_a_changed_dictionary_arrive_as_sent_and_the_context_is_kept() {
        let contexts = Arc::new(Contexts::default());
        let sent =
            vec![batch(0..1000, &["a", "b"]), batch(1000..3000, &["a", "b"]), batch(3000..3010, &["a", "b", "c"])];
        let schema = sent[0].schema();
        for round in 0..2 {
            let (got_schema, got) = decoded(Encoded::new(&schema, sent.clone(), contexts.clone()));
            assert_eq!(got_schema, schema);
            assert_eq!(got, sent, "round {round}");
            assert_eq!(contexts.idle.lock().unwrap().len(), 1, "the context went back after round {round}");
        }
        let (_, none) = decoded(Encoded::new(&schema, Vec::new(), contexts.clone()));
        assert!(none.is_empty(), "a read of no rows sends its schema alone");
    }

    #[test]
    fn idle_contexts_are_bounded() {
        let contexts = Arc::new(Contexts::default());
        let schema = batch(0..1, &["a"]).schema();
        let streams: Vec<_> =
            (0..Contexts::KEPT + 3).map(|_| Encoded::new(&schema, Vec::new(), contexts.clone())).collect();
        drop(streams);
        assert_eq!(contexts.idle.lock().unwrap().len(), Contexts::KEPT);
    }
}
