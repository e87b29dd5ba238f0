"""zsvl.methods"""
