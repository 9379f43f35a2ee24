// The dogpile lock over the network, in a few lines:
//   hello_dogpile 127.0.0.1:7420
// Prints the value, creating it once if the daemon has none, then runs a
// critical section under a write lock.
#include <dogpiled/dogpiled.h>

#include <chrono>
#include <iostream>

int main(int argc, char** argv) {
  dogpiled::Client client(argc > 1 ? argv[1] : "127.0.0.1:7420");
  auto session = dogpiled::Session::Open(client);
  if (!session.ok()) {
    std::cerr << "cannot open a session: " << session.status().ToString()
              << "\n";
    return 1;
  }

  dogpiled::DogpileOptions options;
  options.expiretime = std::chrono::minutes(5);
  dogpiled::Dogpile greeting(*session, "examples", "greeting", options);
  try {
    const std::string value =
        greeting.acquire([] { return std::string("hello from the creator"); });
    std::cout << value << "\n";

    dogpiled::ReadWriteMutex mutex(*session, "examples", "report");
    dogpiled::WriteLockGuard guard(mutex);  // released at scope exit
    std::cout << "holding write lock, token " << guard.token() << "\n";
  } catch (const dogpiled::Error& e) {
    std::cerr << e.what() << "\n";
    return 1;
  }
  return 0;
}
