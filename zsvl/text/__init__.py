"""zsvl.text"""
