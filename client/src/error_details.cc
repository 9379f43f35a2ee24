#include "src/error_details.h"

#include <google/protobuf/any.pb.h>
#include <google/protobuf/descriptor.h>
#include <google/protobuf/descriptor.pb.h>
#include <google/protobuf/dynamic_message.h>

#include <cstddef>
#include <memory>
#include <string>

namespace dogpiled::internal {

// google/rpc/status.proto and error_details.proto, as a FileDescriptorSet
// (proto/embed_bytes.cmake).
extern const unsigned char kGoogleRpcDescriptors[];
extern const std::size_t kGoogleRpcDescriptorsSize;

namespace {

namespace pb = ::google::protobuf;

// The private pool and the prototypes of the three messages we read.
class RpcTypes {
 public:
  RpcTypes() : pool_(pb::DescriptorPool::generated_pool()) {
    pb::FileDescriptorSet set;
    if (!set.ParseFromArray(kGoogleRpcDescriptors,
                            static_cast<int>(kGoogleRpcDescriptorsSize))) {
      return;
    }
    for (const pb::FileDescriptorProto& file : set.file()) {
      // any.proto and duration.proto come from the generated pool beneath.
      if (pool_.FindFileByName(file.name()) == nullptr &&
          pb::DescriptorPool::generated_pool()->FindFileByName(file.name()) ==
              nullptr) {
        pool_.BuildFile(file);
      }
    }
    status_ = Prototype("google.rpc.Status");
    error_info_ = Prototype("google.rpc.ErrorInfo");
    retry_info_ = Prototype("google.rpc.RetryInfo");
  }

  const pb::Message* status() const { return status_; }
  const pb::Message* error_info() const { return error_info_; }
  const pb::Message* retry_info() const { return retry_info_; }

 private:
  const pb::Message* Prototype(const char* name) {
    const pb::Descriptor* d = pool_.FindMessageTypeByName(name);
    return d == nullptr ? nullptr : factory_.GetPrototype(d);
  }

  pb::DescriptorPool pool_;
  pb::DynamicMessageFactory factory_{&pool_};
  const pb::Message* status_ = nullptr;
  const pb::Message* error_info_ = nullptr;
  const pb::Message* retry_info_ = nullptr;
};

const RpcTypes& Types() {
  static const RpcTypes* types = new RpcTypes();  // never destroyed
  return *types;
}

// type.googleapis.com/google.rpc.ErrorInfo -> google.rpc.ErrorInfo
bool IsType(const pb::Any& any, const pb::Message& prototype) {
  const std::string& url = any.type_url();
  const std::string& name = prototype.GetDescriptor()->full_name();
  return url.size() > name.size() &&
         url.compare(url.size() - name.size(), name.size(), name) == 0 &&
         url[url.size() - name.size() - 1] == '/';
}

}  // namespace

Status FromGrpc(const grpc::Status& status) {
  const auto code = static_cast<StatusCode>(status.error_code());
  const RpcTypes& types = Types();
  if (status.ok() || status.error_details().empty() ||
      types.status() == nullptr || types.error_info() == nullptr) {
    return Status(code, status.error_message());
  }
  std::unique_ptr<pb::Message> details(types.status()->New());
  if (!details->ParseFromString(status.error_details())) {
    return Status(code, status.error_message());
  }
  const pb::Descriptor* d = details->GetDescriptor();
  const pb::Reflection* r = details->GetReflection();
  const pb::FieldDescriptor* list = d->FindFieldByName("details");
  std::string reason;
  Status::Metadata metadata;
  std::optional<std::chrono::milliseconds> retry;
  for (int i = 0; i < r->FieldSize(*details, list); ++i) {
    pb::Any any;
    any.CopyFrom(r->GetRepeatedMessage(*details, list, i));
    if (IsType(any, *types.error_info())) {
      std::unique_ptr<pb::Message> info(types.error_info()->New());
      if (!info->ParseFromString(any.value())) {
        continue;
      }
      const pb::Descriptor* id = info->GetDescriptor();
      const pb::Reflection* ir = info->GetReflection();
      reason = ir->GetString(*info, id->FindFieldByName("reason"));
      const pb::FieldDescriptor* map = id->FindFieldByName("metadata");
      for (int j = 0; j < ir->FieldSize(*info, map); ++j) {
        const pb::Message& entry = ir->GetRepeatedMessage(*info, map, j);
        const pb::Descriptor* ed = entry.GetDescriptor();
        const pb::Reflection* er = entry.GetReflection();
        metadata[er->GetString(entry, ed->FindFieldByName("key"))] =
            er->GetString(entry, ed->FindFieldByName("value"));
      }
    } else if (types.retry_info() != nullptr &&
               IsType(any, *types.retry_info())) {
      std::unique_ptr<pb::Message> info(types.retry_info()->New());
      if (!info->ParseFromString(any.value())) {
        continue;
      }
      const pb::Reflection* ir = info->GetReflection();
      const pb::Message& delay = ir->GetMessage(
          *info, info->GetDescriptor()->FindFieldByName("retry_delay"));
      const pb::Reflection* dr = delay.GetReflection();
      const pb::Descriptor* dd = delay.GetDescriptor();
      retry = std::chrono::milliseconds(
          dr->GetInt64(delay, dd->FindFieldByName("seconds")) * 1000 +
          dr->GetInt32(delay, dd->FindFieldByName("nanos")) / 1000000);
    }
  }
  Status out(code, status.error_message(), std::move(reason),
             std::move(metadata));
  if (retry) {
    out.set_retry_delay(*retry);
  }
  return out;
}

Status ReleaseAnswer(Status status) {
  const auto released = status.metadata().find("released");
  if (status.code() == StatusCode::kFailedPrecondition &&
      status.reason() == "NOT_HOLDER" &&
      released != status.metadata().end() && released->second == "true") {
    return Status();
  }
  return status;
}

}  // namespace dogpiled::internal
