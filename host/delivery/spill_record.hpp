// What a spilled message's record data holds (docs/plugin-abi.md, Storage backends). A
// message without binary parts is stored as its payload JSON, as every record written before
// binary support was; one with attachments as an envelope that JSON text can never be:
//   "\0SFB1" <u32 count> (<u32 length> <bytes>)* <payload JSON with placeholders>
// (little-endian lengths). Storage plugins keep data as opaque bytes, so both backends
// replay either form byte for byte.
#pragma once
#include <string>
#include <vector>

#include "delivery/message.hpp"

namespace sf::delivery {

std::string encodeSpillData(const OutMessage& m);
// False when data is an envelope that does not parse (a corrupt record).
bool decodeSpillData(std::string data, std::string& payloadJson, std::vector<std::string>& attachments);

}  // namespace sf::delivery
